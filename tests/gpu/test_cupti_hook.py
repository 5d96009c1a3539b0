"""The CUPTI hook (agents/sysweave/agents/cupti_site/sitecustomize.py) in a real Python process, against a
recorded-readings stand-in for cupti-python (a fake ``cupti`` package written by the test: it replays recorded
activity records through the registered callbacks; not NVIDIA's CUPTI), then joined by cuda_probes.join_cupti."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from sysweave.agents.cuda_probes import CudaTracker, join_cupti
from sysweave.schemas.events import GpuKernel, GpuMemoryTransfer, MemcpyKind

HOOK = Path(__file__).resolve().parents[2] / "agents" / "sysweave" / "agents" / "cupti_site"

FAKE_CUPTI = '''
"""STAND-IN for cupti-python (tests only): replays recorded activity records through the callbacks."""
import enum, types

class ActivityKind(enum.IntEnum):
    MEMCPY = 1
    DRIVER = 6
    CONCURRENT_KERNEL = 10

_cb = {}
enabled = set()

def activity_register_callbacks(requested, completed):
    _cb["req"], _cb["done"] = requested, completed

def activity_enable(kind):
    enabled.add(int(kind))

def get_timestamp():
    return 5_000_000

def _rec(**kw):
    return types.SimpleNamespace(**kw)

def activity_flush_all(flag):
    size, _ = _cb["req"]()
    assert size > 0
    _cb["done"]([
        _rec(kind=ActivityKind.DRIVER, cbid=307, start=5_999_000, end=6_010_000, thread_id=51, correlation_id=77),
        _rec(kind=ActivityKind.CONCURRENT_KERNEL, name="vecadd", start=6_010_000, end=6_200_000, device_id=0,
             stream_id=7, correlation_id=77, grid_x=4096, grid_y=1, grid_z=1, block_x=256, block_y=1, block_z=1),
        _rec(kind=ActivityKind.MEMCPY, copy_kind=2, bytes=1 << 24, start=6_300_000, end=8_000_000, device_id=0,
             stream_id=7, correlation_id=78),
    ])
'''


def test_hook_writes_records_that_join_to_launches(tmp_path: Path) -> None:
    pkg = tmp_path / "site" / "cupti"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "cupti.py").write_text(textwrap.dedent(FAKE_CUPTI))
    out = tmp_path / "records"
    out.mkdir()
    env = {**os.environ, "PYTHONPATH": f"{HOOK}{os.pathsep}{tmp_path / 'site'}", "SYSWEAVE_CUPTI_DIR": str(out)}
    code = "from cupti import cupti; assert cupti.enabled == {1, 6, 10}, cupti.enabled; print('ran')"
    res = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert res.returncode == 0 and res.stdout.strip() == "ran", res.stderr
    files = list(out.glob("cupti-*.jsonl"))
    assert len(files) == 1
    lines = [json.loads(x) for x in files[0].read_text().splitlines()]
    assert lines[0]["anchor"]["activity_ns"] == 5_000_000 and lines[0]["hook_errors"] == 0
    assert [x["kind"] for x in lines[1:]] == ["driver", "kernel", "memcpy"]
    pid = lines[0]["pid"]
    events = join_cupti(lines, [], "h", 3)
    kernel = next(e for e in events if isinstance(e, GpuKernel))
    copy = next(e for e in events if isinstance(e, GpuMemoryTransfer))
    assert (kernel.name, kernel.grid, kernel.block, kernel.correlation_id, kernel.side) == \
        ("vecadd", (4096, 1, 1), (256, 1, 1), 77, "device")
    assert kernel.h.pid == pid and kernel.h.duration_ns == 190_000
    assert (copy.kind, copy.bytes, copy.side) == (MemcpyKind.DTOH, 1 << 24, "device")


def test_without_cupti_the_hook_does_nothing(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(HOOK), "SYSWEAVE_CUPTI_DIR": str(tmp_path)}
    res = subprocess.run([sys.executable, "-c", "print('ran')"], env=env, capture_output=True, text=True, timeout=60)
    assert res.returncode == 0 and res.stdout.strip() == "ran" and not list(tmp_path.iterdir())
    t = CudaTracker("h", 0, lambda e: None, str(tmp_path))
    assert t.child_env()["PYTHONPATH"] == str(HOOK) and t.finish() == []


def _interpreters() -> list[str]:
    """Every CPython 3 this machine has installed (pyenv's versions, the system's; not pyenv's shims, which only
    run the selected version), and the one running the tests."""
    import glob

    found = {sys.executable, *glob.glob(os.path.expanduser("~/.pyenv/versions/3.*/bin/python3")),
             *glob.glob("/usr/bin/python3.*[0-9]")}
    return sorted(p for p in found if os.access(p, os.X_OK))


def test_hook_is_silent_in_every_python_the_machine_has(tmp_path: Path) -> None:
    """A traced program's stderr must not change: the hook runs in whatever Python the user traces (3.6 evaluates
    annotations that 3.9 syntax allows, and used to print "Error in sitecustomize")."""
    pkg = tmp_path / "site" / "cupti"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "cupti.py").write_text(textwrap.dedent(FAKE_CUPTI))
    checked = []
    for python in _interpreters():
        version = subprocess.run([python, "-c", "import sys; print(sys.version_info[:2] >= (3, 7))"],
                                 capture_output=True, text=True).stdout.strip()
        out = tmp_path / f"records-{len(checked)}"
        out.mkdir()
        env = {**os.environ, "PYTHONPATH": f"{HOOK}{os.pathsep}{tmp_path / 'site'}", "SYSWEAVE_CUPTI_DIR": str(out)}
        res = subprocess.run([python, "-c", "print('ran')"], env=env, capture_output=True, text=True, timeout=60)
        assert (res.returncode, res.stdout, res.stderr) == (0, "ran\n", ""), python
        # the hook records where the clocks it reads exist (time.clock_gettime_ns: 3.7+); elsewhere it stays out
        assert len(list(out.glob("cupti-*.jsonl"))) == (1 if version == "True" else 0), python
        checked.append(python)
    assert sys.executable in checked
