"""One capture run: start or attach to targets, stream events to a sink, collect exact aggregates.

The eBPF backend compiles syscalls.bpf.c, arms itself so that the command it starts is traced from its
exec (not from our own pre-exec code), forwards signals to the command, and returns its exit status.
The ptrace backend (ptrace_backend.py) produces the same result type from Debian's strace.
"""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import FrameType
from typing import IO, Any

from sysweave.agents.bpf.syscalls import ProbeConfig, SyscallProbe, TargetError
from sysweave.agents.file_effects import WrittenPaths, file_states
from sysweave.agents.proctree import ProcessTree, start_watchdog
from sysweave.agents.records import RecordDecoder
from sysweave.agents.scratch import PrivateTmp, ScratchError
from sysweave.schemas.events import (
    Event,
    EventHeader,
    HostInfo,
    LostEvents,
    ProcessEvent,
    ProcessEventType,
    SyscallAggregate,
    make_event_id,
)
from sysweave.schemas.syscall_table_x86_64 import SYSCALL_NAMES_X86_64

__all__ = [
    "FORWARDED_SIGNALS",
    "STOP_GRACE_S",
    "CaptureOptions",
    "CaptureResult",
    "EbpfCapture",
    "SignalForwarder",
    "check_pids",
    "exit_status_code",
    "host_addresses",
    "host_identity",
    "wall_offset_ns",
]

FORWARDED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2)


@dataclass(frozen=True, slots=True)
class CaptureOptions:
    follow: bool = False
    slow_ns: int = 10_000  # the syscall class threshold (spec default 10 us)
    observable: bool = False  # ship every observable I/O call (validation turns this on)
    ship_all: bool = False  # --no-sampling
    payload_cap: int = 4096
    host_id: str = ""
    clock_skew_ns: int = 0  # test facility: added to every wall timestamp (simulates a host's clock offset)


@dataclass(slots=True)
class CaptureResult:
    backend: str
    exit_code: int
    aggregates: list[SyscallAggregate] = field(default_factory=list)
    lost: dict[str, int] = field(default_factory=dict)
    events_shipped: int = 0
    root_pid: int = 0
    extra_events: list[Event] = field(default_factory=list)  # host info, lost reports
    wall_s: float = 0.0
    cpu_s: float = 0.0  # user + system of the command and the children it waited for
    max_rss_kb: int = 0  # the tree's peak memory in KiB from a memory cgroup; 0: not measured (see accounting)
    timed_out: bool = False  # killed at its timeout
    interrupted: int | None = None  # the signal that cut the run short
    accounting: str = ""  # where cpu_s and max_rss_kb come from
    program: str = ""  # eBPF: how the program was loaded: "libbpf" (the CO-RE object), else bcc's "cache"/"compiled"


def host_identity() -> str:
    return os.environ.get("SYSWEAVE_HOST_ID") or socket.gethostname()


def wall_offset_ns() -> int:
    """CLOCK_REALTIME - CLOCK_MONOTONIC now: the wall-clock anchor for monotonic kernel timestamps."""
    return time.clock_gettime_ns(time.CLOCK_REALTIME) - time.clock_gettime_ns(time.CLOCK_MONOTONIC)


def exit_status_code(status: int) -> int:
    """A wait status as a shell would report it: the exit code, or 128 + signal."""
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.WEXITSTATUS(status)


class SignalForwarder:
    """Forward terminal signals to the traced command while it runs; restore handlers after."""

    def __init__(self, on_signal: Callable[[int], None]) -> None:
        self._on = on_signal
        self._old: dict[int, Callable[[int, FrameType | None], Any] | int | None] = {}  # signal.signal's answers

    def __enter__(self) -> SignalForwarder:
        if threading.current_thread() is threading.main_thread():
            for sig in FORWARDED_SIGNALS:
                self._old[sig] = signal.signal(sig, lambda s, _f: self._on(s))
        return self

    def __exit__(self, *_: object) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old if old is not None else signal.SIG_DFL)  # None: not set from Python


STOP_GRACE_S = 1.0  # a forwarded signal's grace before SIGKILL (the tree is gone within 2 s of a signal)


def wait_contained(tree: ProcessTree, timeout_s: float | None) -> tuple[int, Any, bool, int | None]:
    """Wait for a contained command: (wait status, its rusage, timed out, the signal that interrupted it).
    At ``timeout_s`` the tree is killed; a SIGINT/SIGTERM/SIGHUP (...) is forwarded to every process of the
    tree, killed STOP_GRACE_S later; a second signal kills it and exits at once."""
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    signals: list[int] = []
    kill_at: list[float] = []

    def on_signal(sig: int) -> None:
        signals.append(sig)
        if len(signals) > 1:  # a second signal: no more grace, no more cleaning up
            tree.kill_all(0.5)
            os._exit(128 + sig)
        tree.signal_all(sig)
        kill_at.append(time.monotonic() + STOP_GRACE_S)

    timed_out = False
    next_reap = time.monotonic() + 0.5
    with SignalForwarder(on_signal):
        while True:
            pid, status, usage = os.wait4(tree.pid, os.WNOHANG)
            if pid:
                tree.popen.returncode = exit_status_code(status)
                break
            now = time.monotonic()
            if (deadline is not None and now > deadline) or (kill_at and now > kill_at[0]):
                timed_out = timed_out or not signals
                tree.kill_all(0.5)
            if now > next_reap:  # orphans of the tree re-parented to us (subreaper): no zombies pile up
                tree.reap_orphans()
                next_reap = now + 0.5
            time.sleep(0.01)
    return status, usage, timed_out, signals[0] if signals else None


class EbpfCapture:
    def __init__(self, options: CaptureOptions, sink: Callable[[Event], None], probe: SyscallProbe | None = None,
                 netns: str | None = None) -> None:
        """``probe``: reuse an already compiled program (several runs, one compile); it is left open.
        ``netns``: report that network namespace's addresses as this host's (the multi-host test bed)."""
        self.netns = netns
        self.options = options
        self.sink = sink
        self.host_id = options.host_id or host_identity()
        self.producer_id = random.getrandbits(64)
        self.config = probe.config if probe else ProbeConfig(payload_cap=options.payload_cap)
        self._own_probe = probe is None
        self.probe = probe or SyscallProbe(self.config)
        self.probe.reset()
        self.probe.set_config(options.slow_ns, options.observable, options.ship_all, options.follow)
        self.decoder = RecordDecoder(self.host_id, self.producer_id, wall_offset_ns() + options.clock_skew_ns,
                                     self.config.path_cap)
        self._live: set[int] = set()
        self._consumer = threading.Thread(target=self._consume, name="sysweave-decode", daemon=True)
        self.shipped = 0
        self._window_start = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
        self._snap = 0
        self._prev_aggs: dict[tuple[int, int], tuple[int, int, int, list[int]]] = {}
        self._prev_lost: dict[str, int] = {}
        self.written: WrittenPaths | None = None  # observable capture: paths the tree wrote (file effects)
        self.scratch: PrivateTmp | None = None  # the run's private /tmp (run_command(private_tmp=True))

    def calls_counted(self) -> int:
        """Syscalls counted exactly in the kernel up to the last snapshot (the metrics endpoint reads it)."""
        return sum(v[0] for v in self._prev_aggs.values())

    def _consume(self) -> None:
        for raw in self.probe.queue.drain():
            for ev in self.decoder.decode(raw):
                self.shipped += 1
                if isinstance(ev, ProcessEvent):
                    if ev.type is ProcessEventType.FORK:
                        self._live.add(ev.child_pid)
                    elif ev.type is ProcessEventType.EXIT:
                        self._live.discard(ev.h.pid)
                if self.written is not None:
                    self.written.feed(ev)
                self.sink(ev)

    def run_command(self, argv: list[str], env: dict[str, str] | None = None, cwd: str | None = None,
                    timeout_s: float | None = None, stdout: IO[bytes] | None = None,
                    stderr: IO[bytes] | None = None, stdin: IO[bytes] | int | None = None,
                    kill_leftovers: bool = False, private_tmp: bool = False) -> CaptureResult:
        """Start ``argv`` traced from its exec, contained (:class:`~.proctree.ProcessTree`); wait for it (and,
        with -f, its descendants). At ``timeout_s`` the whole tree is killed and the result says
        ``timed_out``; a SIGINT/SIGTERM/SIGHUP is forwarded to every process of the tree, which is killed
        ``STOP_GRACE_S`` later, and the result says ``interrupted``; a second signal kills it at once.
        ``kill_leftovers``: kill what is still running of the tree when the command exits (validation).
        ``private_tmp``: the tree gets its own /tmp (:class:`~.scratch.PrivateTmp`; ``cwd`` stays shared), and
        the final states of /tmp paths are read from it. Raises ScratchError where it cannot be made."""
        if self.options.observable:
            self.written = WrittenPaths(os.path.abspath(cwd or os.getcwd()))
        self.probe.start()
        self._consumer.start()
        start_watchdog()  # before arming: a process this one starts while armed is traced as the command's
        self.probe.arm(os.getpid())
        t0 = time.monotonic()
        tree = self._start_tree(argv, env, cwd, stdin, stdout, stderr, private_tmp)
        try:
            status, usage, timed_out, interrupted = wait_contained(tree, timeout_s)
            wall = time.monotonic() - t0
            if timed_out or interrupted or kill_leftovers:
                tree.kill_all()
            elif self.options.follow:  # strace -f waits for every traced process
                self._wait_for_descendants(tree.pid, 5.0)
            cpu_tree, mem_tree = tree.cpu_s(), tree.peak_memory_kb()
        finally:
            tree.close()
        result = self._finish(exit_status_code(status), tree.pid)
        result.wall_s, result.timed_out, result.interrupted = wall, timed_out, interrupted
        _set_resource_use(result, usage, cpu_tree, mem_tree)
        return result

    def _start_tree(self, argv: list[str], env: dict[str, str] | None, cwd: str | None, stdin: IO[bytes] | int | None,
                    stdout: IO[bytes] | None, stderr: IO[bytes] | None, private_tmp: bool) -> ProcessTree:
        """Start the command while the probe is armed, then disarm and track it. On failure (OSError,
        ScratchError) the capture is shut down and the error raised."""
        try:
            here = cwd or os.getcwd()
            self.scratch = PrivateTmp(shared=[here], cwd=here) if private_tmp else None
            tree = ProcessTree.start(argv, pre_exec=self.scratch.enter if self.scratch else None, env=env, cwd=cwd,
                                     stdin=stdin, stdout=stdout, stderr=stderr)
        except (OSError, ScratchError):
            self.probe.disarm()
            self._shutdown()
            self._close_scratch()
            raise
        self.probe.disarm()
        self.probe.track(tree.pid)
        self._live.add(tree.pid)
        return tree

    def _wait_for_descendants(self, root_pid: int, limit_s: float) -> None:
        """Wait (at most ``limit_s``) until every traced process but the reaped root has exited."""
        end = time.monotonic() + limit_s
        self._live.discard(root_pid)
        # copy(): the decoder thread adds and removes pids meanwhile (iterating the live set would race)
        while {p for p in self._live.copy() if os.path.exists(f"/proc/{p}")} and time.monotonic() < end:
            time.sleep(0.05)

    def attach(self, pids: list[int], stop: threading.Event) -> CaptureResult:
        """Trace running processes until they exit or ``stop`` is set (Ctrl-C detaches, never kills)."""
        self.probe.add_targets(pids)
        self.probe.start()
        self._consumer.start()
        with SignalForwarder(lambda _s: stop.set()):
            # with no pids (whole host or a cgroup, see SyscallProbe.trace_all/trace_cgroup) only ``stop`` ends it
            while not stop.is_set() and (not pids or any(os.path.exists(f"/proc/{p}") for p in pids)):
                stop.wait(0.2)
        self.probe.remove_targets(pids)
        return self._finish(0, pids[0] if pids else os.getpid())

    def _close_scratch(self) -> None:
        if self.scratch is not None:
            self.scratch.close()
            self.scratch = None

    def _shutdown(self) -> None:
        # No settling sleep: a process's exit record is in the ring buffer before its parent can reap it
        # (sched_process_exit fires before exit_notify), and stop() drains the ring buffer once more.
        self.probe.stop()
        self._consumer.join(30)
        self.probe.end_run()  # clear this run's marks: the (cached or shared) program may serve another run

    def _finish(self, exit_code: int, root_pid: int) -> CaptureResult:
        self._shutdown()
        aggs, lost, extra = self.snapshot(root_pid)
        if self.written is not None:  # the final state of every path the tree wrote (validation by effects)
            now = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
            offset = wall_offset_ns() + self.options.clock_skew_ns
            extra += file_states(self.written.paths(), self.written.cwd, lambda i: EventHeader(
                make_event_id(self.producer_id, (1 << 61) | i), self.host_id, root_pid, root_pid, now, now + offset),
                where=self.scratch.final_path if self.scratch is not None else None)
        self._close_scratch()
        if self._own_probe:
            self.probe.close()
        return CaptureResult("ebpf", exit_code, aggs, lost, self.shipped, root_pid, extra, program=self.probe.origin)

    def snapshot(self, root_pid: int) -> tuple[list[SyscallAggregate], dict[str, int], list[Event]]:
        """Exact aggregates and losses since the previous snapshot (a window), plus this host's identity.

        Windows make a long-running agent's statistics exact too: the sum over windows is the total."""
        now = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
        offset = wall_offset_ns() + self.options.clock_skew_ns
        start = self._window_start or now
        self._snap += 1
        base = (self._snap << 40) | (1 << 62)  # event ids of snapshot events: disjoint from the record sequence

        def header(i: int, pid: int) -> EventHeader:
            return EventHeader(make_event_id(self.producer_id, base + i), self.host_id, pid, pid, start, start + offset,
                               now - start)

        aggs = []
        for i, (tgid, nr, calls, errors, total, hist) in enumerate(sorted(self.probe.aggregates())):
            prev = self._prev_aggs.get((tgid, nr))
            self._prev_aggs[(tgid, nr)] = (calls, errors, total, hist)
            if prev:
                calls, errors, total = calls - prev[0], errors - prev[1], total - prev[2]
                hist = [a - b for a, b in zip(hist, prev[3])]
            if calls:
                aggs.append(SyscallAggregate(header(i + 16, tgid), nr, SYSCALL_NAMES_X86_64.get(nr, f"syscall_{nr}"),
                                             calls, errors, total, tuple(hist)))
        total_lost = self.probe.lost()
        total_lost["undecodable"] = self.decoder.bad_records
        lost = {k: v - self._prev_lost.get(k, 0) for k, v in total_lost.items()}
        self._prev_lost = total_lost
        extra: list[Event] = [HostInfo(header(0, root_pid), socket.gethostname(), kernel=os.uname().release,
                                       arch=os.uname().machine, clock_offset_ns=offset, addresses=host_addresses(self.netns),
                                       backend="ebpf")]
        for j, (source, count) in enumerate(sorted(lost.items())):
            if count:
                extra.append(LostEvents(header(1 + j, root_pid), source, count))
        self._window_start = now
        return aggs, lost, extra


def _set_resource_use(result: CaptureResult, usage: Any, cpu_tree: float | None, mem_tree: int | None) -> None:
    """The run's CPU seconds and peak memory (KiB), from the tree's cgroup where there is one, else from wait4's
    rusage (CPU only), and which of the two each came from."""
    result.cpu_s = cpu_tree if cpu_tree is not None else usage.ru_utime + usage.ru_stime
    # wait4's ru_maxrss is no substitute: it includes the image before the exec (a forked Python: ~67 MB)
    result.max_rss_kb = mem_tree or 0
    result.accounting = ("cgroup cpu.stat" if cpu_tree is not None else "wait4 rusage (waited-for processes)") + \
        (", memory cgroup peak" if mem_tree is not None else ", peak memory not measured (no memory cgroup)")


def host_addresses(netns: str | None = None) -> tuple[str, ...]:
    """This (or the named) network namespace's IP addresses (to match TCP connections seen from both ends), plus
    $SYSWEAVE_NODE_IP (comma-separated) for this host: an agent pod without host networking is told its node's
    address by the downward API (helm chart, agent.hostNetwork=false)."""
    node = set() if netns else {a.strip() for a in os.environ.get("SYSWEAVE_NODE_IP", "").split(",") if a.strip()}
    try:
        ns = ["-n", netns] if netns else []
        out = subprocess.run(["ip", *ns, "-j", "addr"], capture_output=True, text=True, timeout=5, check=True).stdout
        import json

        return tuple(sorted(node | {a["local"] for link in json.loads(out) for a in link.get("addr_info", [])
                                    if "local" in a}))
    except (OSError, subprocess.SubprocessError, ValueError):
        return tuple(sorted(node))


def check_pids(pids: list[int]) -> None:
    for pid in pids:
        if not os.path.exists(f"/proc/{pid}"):
            raise TargetError(f"attach: pid {pid}: No such process")
