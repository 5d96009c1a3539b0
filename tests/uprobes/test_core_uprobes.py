"""Function probes on the CO-RE path (uprobes.bpf.o through libbpf): no compiler, no kernel headers, no bcc.

As tests/capture/test_core_loader.py does for system calls: a private mount namespace hides
/lib/modules/$(uname -r) behind an empty directory and has no bpffs, PATH holds no compiler, and a poisoned
``bcc`` package first on PYTHONPATH makes any import of bcc fail; the calls of the probed functions must still
be exact, and bpffs must still be unmounted afterwards.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from sysweave.agents.bpf.libbpf_object import core_unavailable

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
SYSWEAVE = [sys.executable, "-m", "sysweave.cli.main"]

pytestmark = [pytest.mark.bpf]


@pytest.fixture
def core_ready() -> None:
    if os.geteuid() != 0:
        pytest.fail("eBPF tests need root: run 'sudo make test'", pytrace=False)
    for name in ("syscalls", "uprobes"):
        reason = core_unavailable(name)
        if reason:
            pytest.fail(reason, pytrace=False)
    if not shutil.which("unshare"):
        pytest.fail("unshare (util-linux) is missing", pytrace=False)


@pytest.fixture
def work(tmp_path: Path) -> Path:
    """The fixture binaries, built before the compiler is taken away."""
    subprocess.run(["cc", "-O1", "-shared", "-fPIC", "-o", str(tmp_path / "libuprobe_lib.so"),
                    str(FIXTURES / "uprobe_lib.c")], check=True)
    subprocess.run(["cc", "-O1", "-fno-inline", "-o", str(tmp_path / "uprobe_work"), str(FIXTURES / "uprobe_work.c"),
                    f"-L{tmp_path}", "-luprobe_lib", f"-Wl,-rpath,{tmp_path}"], check=True)
    return tmp_path


def bare_node_trace(tmp_path: Path, args: list[str]) -> dict[str, Any]:
    """``sysweave trace -c --format json ARGS`` with no compiler, no kernel headers and no importable bcc."""
    empty, bindir, poison = tmp_path / "empty-modules", tmp_path / "bin", tmp_path / "poison" / "bcc"
    for d in (empty, bindir, poison):
        d.mkdir(parents=True)
    (poison / "__init__.py").write_text("raise ImportError('bcc imported on the libbpf path')\n")
    for tool in ("sh", "mount", "umount", "grep", "uname", "env", "cat", "true"):
        os.symlink(shutil.which(tool) or f"/bin/{tool}", bindir / tool)
    modules = f"/lib/modules/{os.uname().release}"
    # as on a freshly booted node: no bpffs either (the libbpf path shares maps by fd and must not mount it)
    bpffs = "grep -q ' /sys/fs/bpf ' /proc/self/mounts"
    script = (f'mkdir -p {modules} 2>/dev/null; mount --bind {empty} {modules} || exit 97; '
              f'[ -e {modules}/build ] && exit 98; command -v clang clang-14 cc gcc >/dev/null && exit 99; '
              f'while {bpffs}; do umount /sys/fs/bpf || exit 96; done; '
              f'"$@"; rc=$?; {bpffs} && exit 95; exit $rc')
    env = {**os.environ, "PATH": str(bindir), "SYSWEAVE_BPF_LOADER": "libbpf", "SYSWEAVE_BPF_CACHE": "0",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(poison.parent), os.environ.get("PYTHONPATH")]))}
    cmd = [shutil.which("unshare") or "unshare", "-m", "--propagation", "private", "/bin/sh", "-c", script, "sh",
           *SYSWEAVE, "trace", "-c", "--format", "json", "--no-store", *args]
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120, cwd=tmp_path)
    assert res.returncode not in (96, 97, 98, 99), f"the bare-node namespace could not be set up ({res.returncode})"
    assert res.returncode != 95, "the run mounted bpffs"
    assert res.returncode == 0, res.stderr
    assert "bcc" not in res.stderr, res.stderr  # no fallback line, no import attempt
    doc: dict[str, Any] = json.loads(res.stdout.strip().splitlines()[-1])
    return doc


def test_uprobes_need_no_compiler_headers_or_bcc(work: Path, core_ready: None) -> None:
    doc = bare_node_trace(work, ["--uprobe", "fast_step,slow_step(n=arg1)", "--uprobe", "/^vec_/",
                                 "--uprobe", f"{work}/libuprobe_lib.so:lib_scale", "--uprobe", "c:getpid", "--",
                                 str(work / "uprobe_work"), "1000", "3", "1000"])
    calls = {f["function"]: f["calls"] for f in doc["functions"]}
    assert calls == {"fast_step": 1000, "slow_step": 3, "vec_add": 1, "vec_mul": 2, "vec_dot": 3, "lib_scale": 7,
                     "getpid": 100}
    funcs = {f["function"]: f for f in doc["functions"]}
    assert 3_000_000 <= funcs["slow_step"]["total_ns"] < 150_000_000  # 3 sleeps of 1 ms, measured in the kernel
    assert funcs["lib_scale"]["library"] == str(work / "libuprobe_lib.so")
    assert funcs["getpid"]["library"].endswith("libc.so.6")  # 'c' through the linker cache, no ldconfig on PATH
    assert doc["lost_events"] == 0 and doc["exit_code"] == 0


def test_the_loader_is_libbpf_and_dump_bpf_says_so(core_ready: None) -> None:
    env = {**os.environ, "SYSWEAVE_BPF_LOADER": "auto"}
    res = subprocess.run([*SYSWEAVE, "trace", "--dump-bpf", "--uprobe", "libm:cos"], capture_output=True, text=True,
                         timeout=60, env=env)
    assert res.returncode == 0, res.stderr
    assert "// function probes, loader on this host: libbpf" in res.stdout
    assert "uprobes.bpf.o, built ahead of time" in res.stdout and "bpf_get_attach_cookie" in res.stdout


_ATTACH_RUN = """
import json, os, subprocess, sys
from sysweave.agents.bpf.syscalls import ProbeConfig, SyscallProbe
from sysweave.agents.bpf.uprobes import UprobeConfig, UprobeProgram, resolve_probes
from sysweave.agents.bpf.uprobes_spec import parse_spec
exe, mode = sys.argv[1], sys.argv[2]
sp = SyscallProbe(ProbeConfig())
up = UprobeProgram(resolve_probes([parse_spec("fast_step"), parse_spec("/^vec_/")], exe), sp, UprobeConfig(attach=mode))
sp.trace_all(os.getpid())
child = subprocess.Popen([exe, "500", "0", "0"], stdout=subprocess.DEVNULL)
child.wait()
calls = {up.probes[p].symbol: n for tgid, p, n, _, _ in up.aggregates() if tgid == child.pid}
print(json.dumps({"origin": up.origin, "calls": calls, "bcc": "bcc" in sys.modules}))
up.close()
sp.close()
"""


@pytest.mark.parametrize("mode", ["multi", "each"])
def test_both_attach_modes_count_exactly(work: Path, core_ready: None, mode: str) -> None:
    """uprobe_multi links (kernel 6.6+, the default here) and one perf-event uprobe per function (older
    kernels) give the same exact counts."""
    env = {**os.environ, "SYSWEAVE_BPF_LOADER": "libbpf"}
    res = subprocess.run([sys.executable, "-c", _ATTACH_RUN, str(work / "uprobe_work"), mode], capture_output=True,
                         text=True, env=env, timeout=120)
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout.strip().splitlines()[-1])
    assert doc == {"origin": "libbpf", "bcc": False, "calls": {"fast_step": 500, "vec_add": 1, "vec_mul": 2,
                                                                 "vec_dot": 3}}


def test_more_functions_than_the_bcc_fallback_can_hold(work: Path, core_ready: None) -> None:
    """Ids are cookies on the libbpf path: 269 libc functions (c:/^s/) and getpid, attached and counted; bcc's
    per-id programs stop at 256 and say so."""
    argv = ["--uprobe", "c:/^s/", "--uprobe", "c:getpid", "--", str(work / "uprobe_work"), "10", "1", "100"]
    res = subprocess.run([*SYSWEAVE, "trace", "-c", "--format", "json", "--no-store", *argv], capture_output=True,
                         text=True, timeout=120, env={**os.environ, "SYSWEAVE_BPF_LOADER": "libbpf"})
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout.strip().splitlines()[-1])
    assert {f["function"]: f["calls"] for f in doc["functions"]}["getpid"] == 100 and doc["lost_events"] == 0
    res = subprocess.run([*SYSWEAVE, "trace", "-c", "--no-store", *argv], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "SYSWEAVE_BPF_LOADER": "bcc"})
    assert res.returncode == 1 and "at most 256 can be probed with the bcc loader" in res.stderr
