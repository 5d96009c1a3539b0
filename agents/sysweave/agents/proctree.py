"""Contain a started command's whole process tree, so that stopping it stops every descendant.

Three layers, each for a way a process escapes:

* a **cgroup v2 per run** (``<cgroup2 mount>/sysweave/<pid>-<n>``; on a cgroup v1 hybrid host the v2
  hierarchy is at /sys/fs/cgroup/unified): the command joins it before its exec, so every descendant is in
  it, also one that left the process group or double-forked; stopping is ``cgroup.kill``. Its ``cpu.stat``
  is the tree's CPU time (also of processes nobody waited for).
* ``PR_SET_CHILD_SUBREAPER`` on this process where no cgroup can be made: an orphaned descendant is
  re-parented to us, not to init, so the descendant walk (the fallback) still finds it.
* a **watchdog** (a small process in its own session, started once) holding a pipe from us: when we die,
  even by SIGKILL, it reads EOF and kills every run cgroup still listed, then exits. On a cgroup v1 host
  without v2, the run's v1 memory cgroup (made for the peak memory) holds the tree the same way. The command itself
  also gets ``PR_SET_PDEATHSIG`` (SIGKILL), which covers the direct child where no cgroup exists.

Where cgroup v2 is not writable (no cgroup2 mount, a read-only container), :func:`containment` names it and
the command that fixes it; a descendant that escaped the tree may then outlive a SIGKILLed parent.
"""

from __future__ import annotations

import contextlib
import ctypes
import itertools
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable

__all__ = ["ProcessTree", "become_subreaper", "cgroup2_root", "containment", "descendants", "start_watchdog",
           "unblock_signals"]

PR_SET_PDEATHSIG, PR_SET_CHILD_SUBREAPER = 1, 36
_libc = ctypes.CDLL(None, use_errno=True)
_counter = itertools.count()
_lock = threading.Lock()
_watchdog: subprocess.Popen[bytes] | None = None

# Runs in the watchdog: a line "+DIR" adds a cgroup to kill if we die, "-DIR" drops it; EOF: kill and remove.
_WATCHDOG = r"""
import os, signal, sys, time
for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
    signal.signal(s, signal.SIG_IGN)
live = set()
for line in sys.stdin:
    d = line.strip()
    (live.add if line[0] == "+" else live.discard)(d[1:])
for d in live:
    for _ in range(50):
        try:
            with open(d + "/cgroup.kill", "w") as f:
                f.write("1")
        except OSError:
            try:
                pids = open(d + "/cgroup.procs").read().split()
            except OSError:
                break
            for p in pids:
                try:
                    os.kill(int(p), signal.SIGKILL)
                except OSError:
                    pass
        try:
            os.rmdir(d)
            break
        except OSError:
            time.sleep(0.02)
"""


def become_subreaper() -> bool:
    """Make this process the reaper of its orphaned descendants (Linux >= 3.4). True on success."""
    return int(_libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)) == 0


def _mount(fstype: str, option: str | None = None) -> str | None:
    try:
        with open("/proc/self/mounts") as f:
            for line in f:
                parts = line.split()
                if len(parts) > 3 and parts[2] == fstype and (option is None or option in parts[3].split(",")):
                    return parts[1]
    except OSError:
        pass
    return None


def cgroup2_root() -> str | None:
    """Where the cgroup v2 hierarchy is mounted (/sys/fs/cgroup, or /sys/fs/cgroup/unified on a hybrid host)."""
    return _mount("cgroup2")


def v1_memory_root() -> str | None:
    """Where a cgroup v1 memory hierarchy is mounted (hybrid hosts), or None."""
    return _mount("cgroup", "memory")


def containment() -> tuple[str | None, str]:
    """(the parent directory for run cgroups, or None; a sentence on how runs are contained)."""
    root = cgroup2_root()
    if root is None:
        return None, ("no cgroup v2 hierarchy is mounted (fix, as root: mkdir -p /sys/fs/cgroup/unified && mount -t cgroup2 none "
                      "/sys/fs/cgroup/unified; infra/setup.sh does it); "
                      "processes are found by walking the tree from a subreaper")
    parent = os.path.join(root, "sysweave")
    try:
        with open(os.path.join(root, "cgroup.controllers")) as f:
            memory = "memory" in f.read().split()
        os.makedirs(parent, exist_ok=True)
    except OSError as exc:
        return None, (f"cannot create {parent} ({exc.strerror}; run as root with cgroup2 writable); "
                      "processes are found by walking the tree from a subreaper")
    if memory:  # memory.peak per run (pure cgroup v2 hosts); without it the peak comes from elsewhere
        with contextlib.suppress(OSError), open(os.path.join(parent, "cgroup.subtree_control"), "w") as g:
            g.write("+memory")
    return parent, f"a cgroup v2 per run under {parent}"


def _make(parent: str, name: str) -> str | None:
    """A new cgroup directory the watchdog removes (killing what is in it) if we die; None if it cannot be made."""
    path = os.path.join(parent, name)
    try:
        os.makedirs(parent, exist_ok=True)
        os.mkdir(path)
    except OSError:
        return None
    _watch("+" + path)
    return path


def _ensure_watchdog() -> subprocess.Popen[bytes]:
    global _watchdog
    if _watchdog is None or _watchdog.poll() is not None:
        _watchdog = subprocess.Popen([sys.executable, "-S", "-c", _WATCHDOG], stdin=subprocess.PIPE,
                                     start_new_session=True, close_fds=True)
    return _watchdog


def start_watchdog() -> None:
    """Start the watchdog now where run cgroups are made. Capture arms this process before it starts the
    command, and a process started while armed is traced as part of the command: the watchdog must exist first."""
    if containment()[0] is not None:
        with _lock:
            _ensure_watchdog()


def _watch(line: str) -> None:
    with _lock:
        dog = _ensure_watchdog()
        assert dog.stdin is not None
        dog.stdin.write(line.encode() + b"\n")
        dog.stdin.flush()


def _stat(pid: str) -> tuple[int, int] | None:
    """(parent pid, start time in clock ticks since boot) of a process, None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return None
    fields = stat[stat.rindex(b")") + 2:].split()
    return int(fields[1]), int(fields[19])


def _children_map() -> dict[int, list[tuple[int, int]]]:
    children: dict[int, list[tuple[int, int]]] = {}
    for name in os.listdir("/proc"):
        if name.isdigit() and (st := _stat(name)) is not None:
            children.setdefault(st[0], []).append((int(name), st[1]))
    return children


def descendants(root: int, children: dict[int, list[tuple[int, int]]] | None = None) -> list[int]:
    """Every live descendant of ``root`` (by /proc/*/stat's parent pid), root excluded."""
    children = _children_map() if children is None else children
    out, todo = [], [root]
    while todo:
        for c, _ in children.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


def _alive(pid: int) -> bool:
    """Running or stopped, not a zombie (a zombie only waits to be reaped)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return False
    return stat[stat.rindex(b")") + 2:stat.rindex(b")") + 3] != b"Z"


def _kill(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def unblock_signals() -> None:
    """In a child, before exec: no signal blocked, as a program started from a shell has it. A blocked mask
    survives exec, and libraries block signals in the thread that loads them (``import chdb`` blocks SIGPIPE
    in the importing thread): a program started after that got SIGPIPE blocked, so a write to a closed pipe
    returned EPIPE instead of killing it — a different program (measured: it then waited forever in pause)."""
    signal.pthread_sigmask(signal.SIG_SETMASK, ())


class ProcessTree:
    """A command started contained (:func:`start`); ``signal_all``/``kill_all`` reach every descendant."""

    def __init__(self, popen: subprocess.Popen[bytes], cgroup: str | None, memory: str | None = None) -> None:
        self.popen = popen
        self.cgroup = cgroup
        self.memory = memory  # a cgroup v1 memory controller directory (hybrid hosts), for the peak
        st = _stat(str(popen.pid))
        self.start_ticks = st[1] if st else 0

    @classmethod
    def start(cls, argv: list[str], pre_exec: Callable[[], None] | None = None, **popen_kwargs: object) -> ProcessTree:
        """Popen ``argv`` in a new cgroup (where possible), with PR_SET_PDEATHSIG; ``pre_exec`` runs in the child
        last before exec (a private /tmp: :meth:`sysweave.agents.scratch.PrivateTmp.enter`). Raises OSError like Popen."""
        parent, _ = containment()
        name = f"{os.getpid()}-{next(_counter)}"
        cgroup = _make(parent, name) if parent is not None else None
        if cgroup is None:  # orphans must stay findable by the descendant walk (a cgroup holds them anyway)
            become_subreaper()
        memory = None
        v1 = v1_memory_root()
        if v1 is not None and (cgroup is None or not os.path.exists(os.path.join(cgroup, "memory.peak"))):
            memory = _make(os.path.join(v1, "sysweave"), name)  # hybrid: the memory controller is a v1 hierarchy
        me = os.getpid()
        join = [os.path.join(d, "cgroup.procs").encode() for d in (cgroup, memory) if d is not None]

        def enter() -> None:  # in the child, before exec: no Python objects beyond these locals
            unblock_signals()
            _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
            if os.getppid() != me:
                os._exit(137)  # we died between fork and prctl
            for procs in join:
                fd = os.open(procs, os.O_WRONLY)
                os.write(fd, b"0")
                os.close(fd)
            if pre_exec is not None:
                pre_exec()

        popen = subprocess.Popen(argv, preexec_fn=enter, **popen_kwargs)  # type: ignore[call-overload]
        return cls(popen, cgroup, memory)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def _orphans(self, children: dict[int, list[tuple[int, int]]]) -> list[int]:
        """Our children that are not the command nor the watchdog, started after it: its re-parented orphans."""
        skip = {self.pid, _watchdog.pid if _watchdog else -1}
        return [p for p, start in children.get(os.getpid(), []) if p not in skip and start >= self.start_ticks]

    def members(self) -> list[int]:
        """Every live process of the tree (a v2 cgroup's, else a v1 memory cgroup's, else the /proc walk)."""
        group = self.cgroup or self.memory
        if group is not None:
            try:
                with open(os.path.join(group, "cgroup.procs")) as f:
                    return [int(p) for p in f.read().split()]
            except OSError:
                return []
        children = _children_map()
        pids = descendants(self.pid, children) + [p for o in self._orphans(children)
                                                  for p in (o, *descendants(o, children))]
        return ([self.pid] if self.popen.returncode is None else []) + pids

    def signal_all(self, sig: int) -> None:
        for pid in self.members():
            _kill(pid, sig)

    def kill_all(self, timeout_s: float = 2.0) -> bool:
        """SIGKILL every process of the tree until none is alive (True) or ``timeout_s`` passed (False)."""
        end = time.monotonic() + timeout_s
        while True:
            if self.cgroup is not None:
                try:
                    with open(os.path.join(self.cgroup, "cgroup.kill"), "w") as f:
                        f.write("1")
                except OSError:
                    pass  # before Linux 5.14: the per-process kill below
            live = [p for p in self.members() if _alive(p)]
            for pid in live:
                _kill(pid, signal.SIGKILL)
            self.reap_orphans()
            if not live:
                return True
            if time.monotonic() > end:
                return False
            time.sleep(0.01)

    def reap_orphans(self) -> None:
        """Reap the tree's orphans that were re-parented to us and exited (never the command: its status is
        the caller's, taken with wait4). With a cgroup we are no subreaper: init reaps them."""
        if self.cgroup is not None:
            return
        for pid in self._orphans(_children_map()):
            try:
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass

    def cpu_s(self) -> float | None:
        """The tree's CPU seconds from the cgroup's cpu.stat (None without a cgroup)."""
        if self.cgroup is None:
            return None
        try:
            with open(os.path.join(self.cgroup, "cpu.stat")) as f:
                for line in f:
                    if line.startswith("usage_usec"):
                        return int(line.split()[1]) / 1e6
        except OSError:
            pass
        return None

    def peak_memory_kb(self) -> int | None:
        """The tree's peak memory charged since it started, KiB (cgroup v2 memory.peak or v1
        memory.max_usage_in_bytes; None without a memory cgroup). Pages the command shared with us at fork
        stay charged to us: the figure is the program's own, not the forked launcher's."""
        for d, name in ((self.cgroup, "memory.peak"), (self.memory, "memory.max_usage_in_bytes")):
            if d is None:
                continue
            try:
                with open(os.path.join(d, name)) as f:
                    return int(f.read()) // 1024
            except (OSError, ValueError):
                continue
        return None

    def close(self) -> None:
        """Kill what is left and remove the cgroup (the watchdog no longer needs to)."""
        self.kill_all()
        for d in (self.cgroup, self.memory):
            if d is None:
                continue
            for _ in range(100):
                try:
                    os.rmdir(d)
                    break
                except OSError:
                    time.sleep(0.01)
            _watch("-" + d)
