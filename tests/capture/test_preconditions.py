"""Host preconditions (agents/preconditions.py) and ``sysweave doctor``: each check reads the host as this
process's mount namespace sees it; capture mounts bpffs itself when it may, and says so when it may not."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from sysweave.agents import preconditions
from sysweave.agents.preconditions import Check, capture_ready, check_all, mounted

from .helpers import SYSWEAVE


def test_mounts_are_read_by_type(tmp_path: Path) -> None:
    table = tmp_path / "mounts"
    table.write_text("sysfs /sys sysfs rw 0 0\nbpf /sys/fs/bpf bpf rw,mode=700 0 0\n"
                     "cgroup2 /sys/fs/cgroup/unified cgroup2 rw 0 0\nbpf /mnt/other bpf rw 0 0\n")
    assert mounted("bpf", str(table)) == ["/sys/fs/bpf", "/mnt/other"]
    assert mounted("cgroup2", str(table)) == ["/sys/fs/cgroup/unified"]
    assert mounted("tracefs", str(table)) == [] and mounted("bpf", str(tmp_path / "absent")) == []


def test_a_failing_check_names_the_fix_and_only_needed_ones_block_capture() -> None:
    slow = Check("bpffs", False, "bpffs is not mounted at /sys/fs/bpf", "mount -t bpf bpf /sys/fs/bpf", capture_needs=False)
    assert slow.line() == "bpffs is not mounted at /sys/fs/bpf; fix: mount -t bpf bpf /sys/fs/bpf"
    ok = Check("tracefs", True, "/sys/kernel/tracing")
    assert capture_ready([ok, slow])
    assert not capture_ready([ok, slow, Check("bcc", False, "no bcc", "make setup-core")])
    assert {c.name for c in check_all()} == {"privileges", "core-object", "bcc", "kernel-headers", "tracefs", "bpffs", "memlock",
                                             "run-dir", "btf", "cgroup2", "strace"}


def test_capture_needs_root_or_capabilities(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(preconditions, "missing_capabilities", lambda: ["CAP_BPF"])
    c = preconditions.check_privileges()
    assert not c.ok and c.capture_needs and "lacks CAP_BPF" in c.detail and c.fix


def _in_private_ns(script: str) -> subprocess.CompletedProcess[str]:
    """``script`` in a private mount namespace with bpffs unmounted (as after a boot); the host is untouched."""
    return subprocess.run(["unshare", "-m", "sh", "-c", f"umount /sys/fs/bpf 2>/dev/null; {script}"],
                          capture_output=True, text=True, timeout=120)


@pytest.mark.bpf
@pytest.mark.usefixtures("bpf_ready")
def test_doctor_reports_bpffs_and_fix_mounts_it() -> None:
    sw = " ".join(SYSWEAVE)
    res = _in_private_ns(f"{sw} doctor --json; echo '#'; {sw} doctor --fix --json; echo '#'; {sw} doctor")
    before, after, text = res.stdout.split("#\n")
    before_doc, after_doc = json.loads(before), json.loads(after)
    bpffs = {c["name"]: c for c in before_doc["checks"]}["bpffs"]
    assert not bpffs["ok"] and bpffs["fix"] == "mount -t bpf bpf /sys/fs/bpf" and not bpffs["capture_needs"]
    assert before_doc["capture_ready"] and res.returncode == 0  # slower without the cache, but capture works
    assert {c["name"]: c["ok"] for c in after_doc["checks"]}["bpffs"]
    assert "eBPF capture is ready" in text or "eBPF capture can start" in text


@pytest.mark.bpf
@pytest.mark.usefixtures("bpf_ready")
def test_doctor_exits_1_when_capture_cannot_start() -> None:
    # without CAP_BPF/CAP_PERFMON (root with them dropped), eBPF capture cannot start
    res = subprocess.run(["setpriv", "--inh-caps", "-bpf,-perfmon", "--bounding-set", "-bpf,-perfmon", "--",
                          *SYSWEAVE, "doctor"], capture_output=True, text=True, timeout=60)
    assert res.returncode == 1, res.stdout + res.stderr
    row = next(line for line in res.stdout.splitlines() if "privileges" in line)
    assert row.split()[0] == "MISSING" and "CAP_BPF" in row and "cannot start" in res.stdout
