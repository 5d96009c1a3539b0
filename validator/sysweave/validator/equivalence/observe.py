"""Obs(P): a run's effects on the world outside its process tree, extracted from its trace (pure).

The definition is docs/equivalence.md; this module builds, from a run's events:

* **files**: every path the run wrote (or, given a snapshot, every path under its workdir), named relative
  to the run's working directory, with its **final state** (:mod:`.filestate`): from ``FileState`` events
  when the trace has them, else from the ``final_state`` reader the caller passes (the harness reads the
  disk); intermediate files (created by the run, absent at its end) are dropped;
* **streams**: stdout/stderr (given by the harness, or rebuilt from the captured write payloads), with the
  write that carried each byte range (to name where a difference began);
* **conversations** by endpoint: byte streams per direction (TCP, Unix), message sequences (UDP);
  listening endpoints; the set of **input files** read by the program (not by launcher helpers);
* **programs**: the visible-program tree (:mod:`.processes`: launchers looked through, helpers dropped).

fd resolution is the pipeline's one tracker (``streams.pipeline.fdtrack``); what each operation it resolves
contributes is one handler in :mod:`.effects`; the pass's state is :class:`~.extraction.Extraction`, which
:mod:`.settle` finishes. Every effect carries an
:class:`Origin` — host, pid and a happens-before position — so comparison can report the first difference.

Worked example (one write of "hi\\n" to ./out.txt; the final state comes from a FileState event)::

    >>> from sysweave.schemas.events import EventHeader, FileState, ProcessEvent, ProcessEventType, SyscallSpan
    >>> def h(t): return EventHeader(bytes([t]) * 16, "h", 10, 10, t, t)
    >>> evs = [ProcessEvent(h(1), ProcessEventType.EXEC, filename="/usr/bin/prog", argv=("prog",)),
    ...        SyscallSpan(h(2), 257, "openat", 3, {"dirfd": -100, "path": "out.txt", "flags": 0o1101}),
    ...        SyscallSpan(h(3), 1, "write", 3, {"fd": 3}, b"hi\\n", 3),
    ...        FileState(h(4), "/w/out.txt", True, "file", 0o644, 3, "d1", b"hi\\n", "", "/w")]
    >>> obs = extract(evs, "/w", 10)
    >>> obs.files["./out.txt"].describe(), obs.programs.role if obs.programs else None
    ('file mode 0644, 3 bytes', ('prog',))
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable

from sysweave.schemas.events import Event, FileState, LostEvents, ProcessEvent, SyscallSpan
from sysweave.streams.pipeline.fdresources import ResourceKind
from sysweave.streams.pipeline.fdtrack import RW_CALLS, WRITES
from sysweave.validator.equivalence.effects import BY_OP, exec_failed, process_event, rw, stdio
from sysweave.validator.equivalence.extraction import Extraction
from sysweave.validator.equivalence.filestate import FileEffect
from sysweave.validator.equivalence.model import (
    IGNORED_PARTS,
    IGNORED_PREFIXES,
    STDIO_PATHS,
    Conversation,
    Obs,
    Origin,
    StreamObs,
    normalize_endpoint,
)
from sysweave.validator.equivalence.moved import MOVERS, settle_moved
from sysweave.validator.equivalence.ports import kernel_ports
from sysweave.validator.equivalence.settle import edge_roles, finish, strip

# the model's names stay importable from here (observe is where extraction's users look first)
__all__ = ["IGNORED_PARTS", "IGNORED_PREFIXES", "Conversation", "Obs", "Origin", "StreamObs", "edge_roles", "extract",
           "normalize_endpoint"]


def syscall(ex: Extraction, e: SyscallSpan) -> None:
    """One system call: reads, writes and closes of files on the hot path (they never change fd tables, so the
    fd is looked up directly), every other call through fdtrack and the handler for its operation kind."""
    name = e.name
    if name in RW_CALLS:
        if e.ret > 0:
            _rw_fast(ex, e, name in WRITES)
        return
    if name == "close" and e.ret == 0:
        # closing a file changes nothing we compare, and a stale FILE entry cannot mislead: any later
        # use of that fd number either fails (skipped) or first rebinds it (open, dup2, pipe, socket)
        fd = e.args.get("fd", -1)
        res = ex.live_table(e).get(fd) if type(fd) is int else None
        if res is None or res.kind is ResourceKind.FILE:
            return
    ex.proc(e.h.host_id, e.h.pid)
    if e.ret < 0 and name in ("execve", "execveat"):
        exec_failed(ex, e)
    acc = ex.tracker.feed(e)
    if acc is not None:
        handler = BY_OP.get(acc.op)
        if handler is not None:
            handler(ex, e, acc)


def _rw_fast(ex: Extraction, e: SyscallSpan, write: bool) -> None:
    res = ex.tracker.io_target(e)[1]  # fdtrack's one fd-table fast path (no feed: reads and writes change no table)
    if res is None:
        return
    if res.kind is ResourceKind.FILE:  # the hottest: a write to a file
        if write and res.path in STDIO_PATHS:  # open("/dev/stdout", "w") is stdout
            stdio(ex, e, STDIO_PATHS[res.path], e.ret)
        elif write:
            ex.io_bytes += e.ret
            ex.file_writes[res.id] = e
            pid = e.h.pid
            if ex.file_pid.get(res.id) != pid:  # a writer of its own (effects, for launchers)
                ex.file_pid[res.id] = pid
                ex.file_of[res.id] = (e.h.host_id, res.path)
                ex.touched.setdefault(((e.h.host_id, pid), res.path), e.h.mono_ns)
        return
    rw(ex, e, res, write, e.ret)


def _order_fn(evs: list[Event], multi_host: bool) -> Callable[[Event], float]:
    """Happens-before position in [0, 1]: Lamport stamps across hosts (assembled traces carry stamps
    consistent with every causal edge), monotonic time within one host (``evs`` sorted by it)."""
    if multi_host:
        top = max((e.h.stamp.lamport for e in evs), default=0) or 1
        return lambda e: e.h.stamp.lamport / top
    lo = evs[0].h.mono_ns if evs else 0
    span = ((evs[-1].h.mono_ns if evs else 0) - lo) or 1
    return lambda e: (e.h.mono_ns - lo) / span


def _scan(evs: list[Event]) -> tuple[list[str], bool, int]:
    """One pass: the hosts (of syscalls and process events), whether ``evs`` is in (host, mono_ns) order,
    and how many syscalls there are."""
    hosts: set[str] = set()
    in_order, n = True, 0
    prev_host, prev_mono, added = "", -1, False
    for e in evs:
        h = e.h
        t = type(e)
        hid = h.host_id
        if hid != prev_host:
            if hid < prev_host:
                in_order = False
            prev_host, added = hid, False
        elif h.mono_ns < prev_mono:
            in_order = False
        if t is SyscallSpan:
            n += 1
            if not added:
                hosts.add(hid)
                added = True
        elif t is ProcessEvent and not added:
            hosts.add(hid)
            added = True
        prev_mono = h.mono_ns
    return sorted(hosts), in_order, n


def extract(events: Iterable[Event], workdir: str, root_pid: int, stdout: bytes | None = b"",
            stderr: bytes | None = b"", exit_code: int | None = None, home: str | None = None,
            capture_stdio: bool = False, final_state: Callable[[str], FileEffect] | None = None,
            tree: dict[str, FileEffect] | None = None,
            read_range: Callable[[str, int, int], bytes | None] | None = None,
            stdin_range: Callable[[int, int], bytes | None] | None = None) -> Obs:
    """Obs of one run from its events (any order).

    ``workdir``: the run's working directory ("" for a stored trace: each host's comes from its FileState
    events, else paths stay as spelled). ``stdout``/``stderr``: captured whole by the harness; with
    ``capture_stdio`` they are rebuilt from write payloads instead. ``final_state``: reads a path's final
    state where the trace has no FileState for it (the harness's disk reader; None: unknown).
    ``tree``: the workdir's final entries (``./rel`` -> state), all in scope. ``root_pid``: the tree's root
    (0: every process without a traced parent, one per host). ``read_range``: reads bytes [start, end) of a file
    on disk (the harness's; what a sendfile/splice moved from a file the run did not change, past the content
    its final state keeps). ``stdin_range``: bytes [start, end) of the run's stdin (the harness's; what a
    splice from the inherited fd 0 moved)."""
    ex = Extraction.start(workdir, home if home is not None else os.path.expanduser("~"), final_state, capture_stdio)
    ex.read_range, ex.stdin_range = read_range, stdin_range
    evs = list(events)
    ex.obs.hosts, in_order, ex.obs.syscalls = _scan(evs)
    multi = len(ex.obs.hosts) > 1
    if not in_order:
        evs.sort(key=lambda e: (e.h.host_id, e.h.mono_ns, e.h.event_id))
    ex.order = _order_fn(evs, multi)
    ex.kernel_ports = kernel_ports(evs)  # only these ports are normalised; chosen ones are compared as they are
    # pipes' content is modelled only where bytes leave a pipe inside the kernel (moved.py)
    ex.model_pipes = any(type(e) is SyscallSpan and e.name in MOVERS for e in evs)
    ex.obs.events = len(evs)
    _loop(ex, evs)
    finish(ex, root_pid, exit_code, tree)
    settle_moved(ex)  # after finish: the run's file changes are all known
    if not capture_stdio:
        for name, data in (("stdout", stdout), ("stderr", stderr)):
            s = ex.obs.streams.setdefault(name, StreamObs())
            s.data, s.total = data or b"", len(data or b"")
    for name, s in ex.obs.streams.items():
        ranges = [(a, b) for k, a, b in ex.strip if k == name]
        if ranges:
            s.data = strip(s.data, ranges)
            s.total = len(s.data) if not capture_stdio else s.total - sum(b - a for a, b in ranges)
    return ex.obs


def _loop(ex: Extraction, evs: list[Event]) -> None:
    """Every event through the extraction; writes to files, the bulk of most traces, inline (locals only)."""
    tables, live, file_writes, file_pid = ex.tables, ex.tracker.live_table, ex.file_writes, ex.file_pid
    file_kind, io_bytes = ResourceKind.FILE, 0
    for e in evs:
        if type(e) is SyscallSpan:
            if e.name in WRITES and e.ret > 0:
                h = e.h
                key = (h.host_id, h.pid)
                fds = tables.get(key)
                if fds is None:
                    fds = tables[key] = live(*key)
                fd = e.args.get("fd", -1)
                res = fds.get(fd) if type(fd) is int else None
                if res is not None and res.kind is file_kind and file_pid.get(res.id) == h.pid:
                    io_bytes += e.ret  # another write by the same writer: only the last change matters
                    file_writes[res.id] = e
                    continue
            syscall(ex, e)
        elif isinstance(e, ProcessEvent):
            process_event(ex, e)
            ex.tracker.feed(e)
        elif isinstance(e, FileState):
            ex.states[(e.h.host_id, os.path.normpath(e.path))] = e
            if e.cwd:
                ex.cwds[e.h.host_id] = os.path.normpath(e.cwd)
        elif isinstance(e, LostEvents):
            ex.obs.lost_events += e.count
    ex.io_bytes += io_bytes
