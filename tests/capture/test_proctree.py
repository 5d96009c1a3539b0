"""Process-tree containment (agents/proctree.py): every descendant is stopped, also one that left the process
group, with a cgroup and without one (the subreaper walk); a run's cgroup is removed; the tree's CPU time."""

from __future__ import annotations

import os
import subprocess
import time
import uuid

import pytest

from sysweave.agents import proctree
from sysweave.agents.proctree import ProcessTree, descendants


def _left(marker: str) -> list[str]:
    return subprocess.run(["pgrep", "-f", f"^sleep {marker}$"], capture_output=True, text=True).stdout.split()


def _escaping_tree(marker: str) -> ProcessTree:
    tree = ProcessTree.start(["/bin/sh", "-c", f"setsid sleep {marker} & (sleep {marker} &) ; sleep {marker}"])
    end = time.monotonic() + 10
    while len(_left(marker)) < 3 and time.monotonic() < end:
        time.sleep(0.02)
    assert len(_left(marker)) == 3
    return tree


@pytest.mark.parametrize("how", ["cgroup", "v1-memory", "subreaper-walk"])
def test_kill_all_stops_every_descendant(how: str, monkeypatch: pytest.MonkeyPatch) -> None:
    cgroup = how == "cgroup"
    if cgroup and proctree.containment()[0] is None:
        pytest.skip(proctree.containment()[1])
    if how == "v1-memory" and proctree.v1_memory_root() is None:
        pytest.skip("no cgroup v1 memory hierarchy here")
    if not cgroup:
        monkeypatch.setattr(proctree, "containment", lambda: (None, "test: no cgroup"))
    if how == "subreaper-walk":
        monkeypatch.setattr(proctree, "v1_memory_root", lambda: None)
    marker = f"{3000 + uuid.uuid4().int % 1000}.{os.getpid()}"
    tree = _escaping_tree(marker)
    assert (tree.cgroup is not None) == cgroup
    assert how == "cgroup" or (tree.memory is not None) == (how == "v1-memory")
    assert len([p for p in tree.members() if p != tree.pid]) >= 3
    t0 = time.monotonic()
    assert tree.kill_all()
    tree.popen.wait()
    tree.close()
    assert time.monotonic() - t0 < 2 and _left(marker) == []
    if tree.cgroup:
        assert not os.path.exists(tree.cgroup)


def test_tree_cpu_time_counts_processes_nobody_waited_for() -> None:
    if proctree.containment()[0] is None:
        pytest.skip(proctree.containment()[1])
    burn = "i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done"
    tree = ProcessTree.start(["/bin/sh", "-c", f"({burn}) & {burn}; wait"])
    tree.popen.wait()
    cpu = tree.cpu_s()
    tree.close()
    assert cpu is not None and cpu > 0.1


def test_descendants_walks_the_tree() -> None:
    p = subprocess.Popen(["/bin/sh", "-c", "sleep 30 & sleep 30; wait"])
    try:
        end = time.monotonic() + 5
        while len(descendants(p.pid)) < 2 and time.monotonic() < end:
            time.sleep(0.02)
        assert len(descendants(p.pid)) == 2
    finally:
        for pid in descendants(p.pid):
            os.kill(pid, 9)
        p.kill()
        p.wait()


def test_a_program_starts_with_no_signal_blocked_whatever_this_process_blocked() -> None:
    """``import chdb`` blocks SIGPIPE in the importing thread, and a blocked mask survives fork and exec: a
    program started after it (directly: a shell clears the mask) wrote to a closed pipe and got EPIPE instead
    of dying of SIGPIPE."""
    import signal

    # Python ignores SIGPIPE itself: the writer puts the default action back, as a C program has it
    writer = ["python3", "-c", "import os, signal; signal.signal(signal.SIGPIPE, signal.SIG_DFL); r, w = os.pipe(); "
              "os.close(r); os.write(w, b'x')"]
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGPIPE, signal.SIGUSR1})
    try:
        shown = ProcessTree.start(["grep", "SigBlk", "/proc/self/status"], stdout=subprocess.PIPE, text=True)
        out, _ = shown.popen.communicate(timeout=30)
        shown.close()
        killed = ProcessTree.start(writer, stderr=subprocess.DEVNULL)
        killed.popen.wait(timeout=30)
        killed.close()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)
    assert out.split() == ["SigBlk:", "0000000000000000"] and killed.popen.returncode == -signal.SIGPIPE
