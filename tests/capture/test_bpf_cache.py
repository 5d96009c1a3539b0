"""The pinned program cache (bpf/objects.py): a later run reuses the loaded program, and never sees the
state an earlier run left in it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest

from sysweave.agents.bpf.syscalls import ProbeConfig, SyscallProbe
from sysweave.agents.session import CaptureOptions, EbpfCapture

from .helpers import SYSWEAVE, strace_counts

pytestmark = [pytest.mark.bpf, pytest.mark.usefixtures("bpf_ready")]

CONFIG = ProbeConfig(payload_cap=1024)  # its own cache key: other tests' instances stay untouched


@pytest.fixture(autouse=True)
def _bcc_loader(monkeypatch: pytest.MonkeyPatch) -> None:
    """The pin cache serves bcc's run-time compile (the fallback); the default CO-RE object needs none."""
    monkeypatch.setenv("SYSWEAVE_BPF_LOADER", "bcc")


def _run(argv: list[str], follow: bool = True) -> tuple[dict[int, dict[str, int]], int, str]:
    """{tgid: {syscall: calls}}, the command's pid, and where the program came from (and how fast)."""
    t0 = time.monotonic()
    probe = SyscallProbe(CONFIG)
    origin = f"{probe.origin} in {time.monotonic() - t0:.3f} s"
    cap = EbpfCapture(CaptureOptions(follow=follow, payload_cap=CONFIG.payload_cap), lambda _ev: None, probe=probe)
    try:
        res = cap.run_command(argv)
    finally:
        probe.close()
    by_pid: dict[int, dict[str, int]] = {}
    for a in res.aggregates:
        by_pid.setdefault(a.h.pid, {})[a.name] = a.calls
    return by_pid, res.root_pid, origin


def test_a_second_run_reuses_the_loaded_program_and_counts_exactly(tmp_path) -> None:
    _run(["true"])  # compiles (or reuses) and leaves a clean instance
    argv = ["sh", "-c", f"for i in 1 2 3; do ls / > {tmp_path}/o; done; cat /nonexistent || true"]
    by_pid, _, origin = _run(argv)
    kind, _, seconds, _ = origin.split()
    assert kind == "cache" and float(seconds) < 0.5, origin  # compiling takes 1.5-2.5 s here
    totals: dict[str, int] = {}
    for calls in by_pid.values():
        for name, n in calls.items():
            totals[name] = totals.get(name, 0) + n
    totals.pop("exit_group", None)  # strace -c leaves out calls that never return
    assert totals == {name: calls for name, (calls, _) in strace_counts(argv).items()}


def test_survivors_of_a_run_are_not_traced_by_the_next(tmp_path) -> None:
    """A process an earlier run traced and that outlives it (here: one it attached to; a command's own tree is
    killed with it) is not counted by the next run of the same cached instance."""
    survivor = subprocess.Popen(["sh", "-c", "while :; do cat /etc/hostname > /dev/null; sleep 0.01; done"])
    try:
        assert _attach(survivor.pid, 0.5).get("wait4", 0) > 0  # traced by that run, and still running
        by_pid, root, origin = _run(["sleep", "0.5"])
        assert origin.startswith("cache") and survivor.poll() is None
        assert set(by_pid) == {root}, f"pids counted: {sorted(by_pid)}, the command was {root}, survivor {survivor.pid}"
    finally:
        survivor.kill()
        survivor.wait()


def test_a_concurrent_run_compiles_its_own_and_an_unclean_instance_is_discarded() -> None:
    _run(["true"])
    first = SyscallProbe(CONFIG)
    try:
        assert first.origin == "cache"
        second = SyscallProbe(CONFIG)  # the instance is in use
        assert second.origin == "compiled"
        second.close()
    finally:
        first.close()  # as if its run died: end_run never cleared its marks, so the instance is dirty
    by_pid, _, origin = _run(["true"])
    assert origin.startswith("compiled") and by_pid


def test_cache_can_be_turned_off(monkeypatch: pytest.MonkeyPatch) -> None:
    _run(["true"])  # a clean instance exists...
    monkeypatch.setenv("SYSWEAVE_BPF_CACHE", "0")
    assert _run(["true"])[2].startswith("compiled")  # ...and is not used
    monkeypatch.delenv("SYSWEAVE_BPF_CACHE")
    assert _run(["true"])[2].startswith("cache")  # nor spoiled


def _attach(pid: int, seconds: float) -> dict[str, int]:
    probe = SyscallProbe(CONFIG)
    cap = EbpfCapture(CaptureOptions(payload_cap=CONFIG.payload_cap), lambda _ev: None, probe=probe)
    stop = threading.Event()
    threading.Timer(seconds, stop.set).start()
    try:
        res = cap.attach([pid], stop)
    finally:
        probe.close()
    return {a.name: a.calls for a in res.aggregates if a.h.pid == pid}


def test_a_process_traced_by_two_runs_is_counted_by_each(tmp_path) -> None:
    """Tasks cache their aggregate slots; a new run's reset makes those stale (else its counts would land
    in slots the new run never reads)."""
    loop = subprocess.Popen(["sh", "-c", f"while :; do echo x > {tmp_path}/f; sleep 0.02; done"])
    try:
        first = _attach(loop.pid, 1.0)
        _run(["ls", "/"])  # another run in between hands out slots from 1 again
        second = _attach(loop.pid, 1.0)
        for counts in (first, second):
            assert counts.get("wait4", 0) >= 10 and counts.get("openat", 0) >= 10, counts
    finally:
        loop.kill()
        loop.wait()


def test_old_instances_are_pruned() -> None:
    """The KEEP most recently used instances stay; older ones go, their pins and lock files with them."""
    from sysweave.agents.bpf import objects

    _run(["true"])  # capture mounts bpffs where it is missing and pins an instance (this test may run first)
    names = [f"zz-sysweave-test-{i}" for i in range(objects.KEEP + 2)]
    future = time.time() + 3600  # newer than any real instance: which ones go does not depend on what else is here
    try:
        for i, n in enumerate(names):  # zz-0 the oldest
            os.makedirs(f"{objects.PIN_ROOT}/{n}", exist_ok=True)
            open(f"{objects.LOCK_ROOT}/{n}.lock", "w").close()
            os.utime(f"{objects.LOCK_ROOT}/{n}.lock", (future + i, future + i))
        objects.PinCache._prune()
        gone, kept = names[:2], names[2:]
        assert not any(os.path.exists(f"{objects.PIN_ROOT}/{n}") for n in gone)
        assert not any(os.path.exists(f"{objects.LOCK_ROOT}/{n}.lock") for n in gone)
        assert all(os.path.isdir(f"{objects.PIN_ROOT}/{n}") for n in kept)
    finally:
        for n in names:
            shutil.rmtree(f"{objects.PIN_ROOT}/{n}", ignore_errors=True)
            if os.path.exists(f"{objects.LOCK_ROOT}/{n}.lock"):
                os.unlink(f"{objects.LOCK_ROOT}/{n}.lock")


def _fresh_bpffs_session(tmp_path, steps: list[str], prefix: str = "") -> list[tuple[str, str]]:
    """Run sysweave commands one after another in a private mount namespace where /sys/fs/bpf is not mounted
    (as after a boot; the host's mounts are untouched): [(stdout, stderr)] per step. ``prefix``: runs each
    step under it (e.g. setpriv dropping capabilities)."""
    sw = " ".join(SYSWEAVE)
    script = ["umount /sys/fs/bpf 2>/dev/null", "grep -q ' /sys/fs/bpf bpf ' /proc/self/mounts && exit 99"]
    for i, step in enumerate(steps):
        script.append(f"{prefix} {sw} {step} > {tmp_path}/{i}.out 2> {tmp_path}/{i}.err")
    res = subprocess.run(["unshare", "-m", "sh", "-c", "; ".join(script)], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    return [((tmp_path / f"{i}.out").read_text(), (tmp_path / f"{i}.err").read_text()) for i in range(len(steps))]


TRACE_TRUE = "trace -c --format json --no-store -- true"


def test_without_bpffs_capture_mounts_it_and_the_second_run_uses_the_cache(tmp_path) -> None:
    host_mounts = Path("/proc/self/mounts").read_text()
    doctor, first, second, after = _fresh_bpffs_session(tmp_path, ["doctor --json", TRACE_TRUE, TRACE_TRUE, "doctor --json"])
    rows = {c["name"]: c for c in json.loads(doctor[0])["checks"]}
    assert not rows["bpffs"]["ok"] and rows["bpffs"]["fix"] == "mount -t bpf bpf /sys/fs/bpf"
    runs = [json.loads(out.splitlines()[-1]) for out, _ in (first, second)]
    expected = strace_counts(["true"])
    for doc in runs:  # the trace works: true's calls exactly as strace counts them, nothing lost
        assert doc["exit_code"] == 0 and doc["lost_events"] == 0
        assert {r["syscall"]: (r["calls"], r["errors"]) for r in doc["summary"]} == expected
    assert [doc["bpf_program"] for doc in runs] == ["compiled", "cache"]
    assert "bpffs" not in first[1] + second[1]  # mounted, so nothing to say
    assert {c["name"]: c["ok"] for c in json.loads(after[0])["checks"]}["bpffs"]
    assert Path("/proc/self/mounts").read_text().count(" bpf ") == host_mounts.count(" bpf ")  # the host: untouched


def test_where_bpffs_cannot_be_mounted_each_start_says_so_with_the_fix(tmp_path) -> None:
    no_mount = "setpriv --inh-caps -sys_admin --bounding-set -sys_admin --"  # root without CAP_SYS_ADMIN (a container)
    first, second, doctor = _fresh_bpffs_session(tmp_path, [TRACE_TRUE, TRACE_TRUE, "doctor"], prefix=no_mount)
    for out, err in (first, second):
        doc = json.loads(out.splitlines()[-1])
        assert doc["exit_code"] == 0 and doc["bpf_program"] == "compiled"  # no cache without bpffs...
        warning = [line for line in err.splitlines() if "bpffs" in line]
        assert len(warning) == 1 and warning[0].endswith("fix: mount -t bpf bpf /sys/fs/bpf"), err  # ...and said
    assert "warn    bpffs" in doctor[0] and "fix: mount -t bpf bpf /sys/fs/bpf" in doctor[0]
