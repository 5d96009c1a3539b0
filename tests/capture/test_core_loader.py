"""The CO-RE path (syscalls.bpf.o through libbpf): capture on a node with no compiler and no kernel headers.

A private mount namespace hides /lib/modules/$(uname -r) behind an empty directory and PATH holds no clang,
as on COS/Bottlerocket/managed images; counts, errors and latency histograms must still equal strace -c -f.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from sysweave.agents.bpf.libbpf_object import core_unavailable

from .helpers import SYSWEAVE, comparable, strace_counts

pytestmark = [pytest.mark.bpf]


@pytest.fixture
def core_ready() -> None:
    if os.geteuid() != 0:
        pytest.fail("eBPF tests need root: run 'sudo make test'", pytrace=False)
    reason = core_unavailable("syscalls")
    if reason:
        pytest.fail(f"{reason}", pytrace=False)
    if not shutil.which("unshare"):
        pytest.fail("unshare (util-linux) is missing", pytrace=False)


def _bare_node_run(argv: list[str], tmp_path) -> dict:
    """sysweave trace -f -c in a mount namespace with no kernel headers and a PATH without a compiler."""
    empty = tmp_path / "empty-modules"
    empty.mkdir()
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for tool in ("sh", "mount", "uname", "env", "cat", "true"):
        os.symlink(shutil.which(tool) or f"/bin/{tool}", bindir / tool)
    modules = f"/lib/modules/{os.uname().release}"
    script = (f'mkdir -p {modules} 2>/dev/null; mount --bind {empty} {modules} || exit 97; '
              f'[ -e {modules}/build ] && exit 98; command -v clang clang-14 cc gcc >/dev/null && exit 99; '
              f'exec "$@"')
    env = {**os.environ, "PATH": str(bindir), "SYSWEAVE_BPF_LOADER": "libbpf", "SYSWEAVE_BPF_CACHE": "0"}
    cmd = [shutil.which("unshare") or "unshare", "-m", "--propagation", "private", "/bin/sh", "-c", script, "sh",
           *SYSWEAVE, "trace", "-f", "-c", "--format", "json", "--no-store", "--", *argv]
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    assert res.returncode not in (97, 98, 99), f"the bare-node namespace could not be set up ({res.returncode})"
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout.strip().splitlines()[-1])


def test_capture_needs_no_compiler_and_no_headers(workload_bin: str, tmp_path, core_ready: None) -> None:
    argv = [workload_bin, str(tmp_path)]
    expected = strace_counts(argv)
    doc = _bare_node_run(argv, tmp_path)
    got = {r["syscall"]: (r["calls"], r["errors"]) for r in doc["summary"]}
    assert doc["backend"] == "ebpf" and doc["exit_code"] == 0 and doc["lost_events"] == 0
    assert comparable(got) == comparable(expected)  # futex: see SCHEDULING_DEPENDENT
    assert got["openat"][1] == 40 and got["connect"] == (1, 1)
    # the latency histograms: quantiles read from them bracket each call's time
    assert all(0 < r["p50_ns"] <= r["p99_ns"] for r in doc["summary"]), doc["summary"]


def test_libbpf_is_what_loads_and_bcc_is_not_imported(tmp_path, core_ready: None) -> None:
    code = ("import sys; from sysweave.agents.bpf.syscalls import ProbeConfig, SyscallProbe; "
            "p = SyscallProbe(ProbeConfig()); print(p.origin, 'bcc' in sys.modules); p.close()")
    env = {**os.environ, "SYSWEAVE_BPF_LOADER": "auto"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60, check=True)
    assert out.stdout.split() == ["libbpf", "False"] and "bcc" not in out.stderr
