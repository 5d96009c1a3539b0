"""USDT static probes (``--usdt``) through libbpf: exact hit counts, semaphores, clear errors.

The fixture (tests/fixtures/usdt_work.c) is built with sys/sdt.h (systemtap-sdt-dev, installed by
infra/setup.sh); Debian's /usr/bin/python3.11 carries real USDT notes with semaphores (Python's dtrace
markers), probed as users would.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from sysweave.agents.bpf.uprobes_spec import SpecError, UsdtSpec, parse_usdt

from .test_core_uprobes import bare_node_trace

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
SYSWEAVE = [sys.executable, "-m", "sysweave.cli.main"]
SYSTEM_PYTHON = "/usr/bin/python3.11"  # Debian 12's, built with --with-dtrace


def test_usdt_grammar() -> None:
    assert parse_usdt("python:gc__start") == UsdtSpec(None, "python", "gc__start")
    assert parse_usdt("/usr/bin/python3.11:python:line") == UsdtSpec("/usr/bin/python3.11", "python", "line")
    assert parse_usdt("c:libc:setjmp") == UsdtSpec("c", "libc", "setjmp")
    for bad in ("gc__start", "python:", ":python:gc", "python:gc start", "a::b"):
        with pytest.raises(SpecError, match="PROVIDER:NAME"):
            parse_usdt(bad)


@pytest.fixture(scope="module")
def usdt_work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not any(os.path.exists(f"{d}/sys/sdt.h") for d in ("/usr/include", "/usr/include/x86_64-linux-gnu")):
        pytest.fail("sys/sdt.h is missing: apt-get install systemtap-sdt-dev (or 'make setup')", pytrace=False)
    exe = tmp_path_factory.mktemp("usdt") / "usdt_work"
    subprocess.run(["cc", "-O1", "-o", str(exe), str(FIXTURES / "usdt_work.c")], check=True)
    return exe


def trace_json(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> tuple[Any, dict[str, Any]]:
    """``sysweave trace -c --format json -o FILE ARGS``: the run and its summary document."""
    out = tmp_path / f"summary-{len(list(tmp_path.iterdir()))}.json"
    res = subprocess.run([*SYSWEAVE, "trace", "-c", "--format", "json", "--no-store", "-o", str(out), *args],
                         capture_output=True, text=True, timeout=120, env=env)
    doc = json.loads(out.read_text().strip().splitlines()[-1]) if res.returncode == 0 else {}
    return res, doc


def hits(doc: dict[str, Any]) -> dict[str, int]:
    return {f["function"]: f["calls"] for f in doc["functions"]}


@pytest.mark.bpf
def test_hits_are_counted_exactly_and_semaphores_set(usdt_work: Path, tmp_path: Path) -> None:
    res, doc = trace_json(tmp_path, "--usdt", "sysweave_test:tick", "--usdt", "sysweave_test:done", "--usdt",
                          "sysweave_test:never", "--", str(usdt_work), "1000")
    assert res.returncode == 0, res.stderr
    assert hits(doc) == {"sysweave_test:tick": 1000, "sysweave_test:done": 1}  # `never` was not hit
    assert "enabled 1000 of 1000" in res.stdout  # libbpf set the probe's semaphore: the guarded code ran
    assert {f["library"] for f in doc["functions"]} == {str(usdt_work)} and doc["lost_events"] == 0


@pytest.mark.bpf
def test_pythons_own_markers(tmp_path: Path) -> None:
    """python:gc__start in Debian's interpreter: N explicit collections add exactly N hits (the interpreter's
    own collections at exit are the same in both runs)."""
    counts = []
    for n in (100, 300):
        code = f"import gc; gc.disable(); [gc.collect() for _ in range({n})]"
        res, doc = trace_json(tmp_path, "--usdt", f"{SYSTEM_PYTHON}:python:gc__start", "--", SYSTEM_PYTHON, "-c", code)
        assert res.returncode == 0, res.stderr
        counts.append(hits(doc)["python:gc__start"])
    assert counts[1] - counts[0] == 200 and counts[0] >= 100


@pytest.mark.bpf
def test_a_probe_the_binary_lacks_is_named_with_what_it_has(usdt_work: Path, tmp_path: Path) -> None:
    res, _ = trace_json(tmp_path, "--usdt", "sysweave_test:nope", "--", str(usdt_work), "10")
    assert res.returncode == 1
    assert "no USDT probe sysweave_test:nope in" in res.stderr and "sysweave_test:tick" in res.stderr
    res, _ = trace_json(tmp_path, "--usdt", "sysweave_test:tick", "--", str(usdt_work), "10",
                        env={**os.environ, "SYSWEAVE_BPF_LOADER": "bcc"})
    assert res.returncode == 1 and "USDT probes need libbpf" in res.stderr


@pytest.mark.bpf
def test_usdt_on_a_bare_node(usdt_work: Path, tmp_path: Path) -> None:
    """No compiler, no kernel headers, no importable bcc: still every hit."""
    doc = bare_node_trace(tmp_path, ["--usdt", "sysweave_test:tick", "--uprobe", "c:getpid", "--", str(usdt_work),
                                     "1000"])
    assert hits(doc)["sysweave_test:tick"] == 1000 and doc["lost_events"] == 0


_ATTACH_RUN = """
import json, os, subprocess, sys
from sysweave.agents.bpf.syscalls import ProbeConfig, SyscallProbe
from sysweave.agents.bpf.uprobes import UprobeConfig, UprobeProgram, resolve_usdt
from sysweave.agents.bpf.uprobes_spec import parse_usdt
exe, mode = sys.argv[1], sys.argv[2]
sp = SyscallProbe(ProbeConfig())
up = UprobeProgram(resolve_usdt([parse_usdt("sysweave_test:tick"), parse_usdt("sysweave_test:done")], exe), sp,
                   UprobeConfig(attach=mode))
sp.trace_all(os.getpid())
child = subprocess.run([exe, "700"], capture_output=True, text=True)
calls = {up.probes[p].symbol: n for _, p, n, _, _ in up.aggregates()}
print(json.dumps({"calls": calls, "out": child.stdout.strip()}))
up.close()
sp.close()
"""


@pytest.mark.bpf
@pytest.mark.parametrize("mode", ["multi", "each"])
def test_both_attach_modes_count_hits(usdt_work: Path, mode: str) -> None:
    """uprobe_multi links with the semaphores as reference counters (kernel 6.6+), and libbpf's own USDT
    attachment (perf-event uprobes, older kernels): the same hits, semaphores set either way."""
    res = subprocess.run([sys.executable, "-c", _ATTACH_RUN, str(usdt_work), mode], capture_output=True, text=True,
                         env={**os.environ, "SYSWEAVE_BPF_LOADER": "libbpf"}, timeout=120)
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout.strip().splitlines()[-1])
    assert doc == {"calls": {"sysweave_test:tick": 700, "sysweave_test:done": 1}, "out": "enabled 700 of 700"}
