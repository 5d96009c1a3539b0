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

fd resolution is the pipeline's one tracker (``streams.pipeline.fdtrack``). Every effect carries an
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

from sysweave.schemas.events import (
    Event,
    FileState,
    LostEvents,
    ProcessEvent,
    ProcessEventType,
    SyscallSpan,
)
from sysweave.streams.pipeline.fdtrack import RW_CALLS, WRITES, FdTracker, Op, Resource, ResourceKind
from sysweave.validator.equivalence.filestate import FileEffect
from sysweave.validator.equivalence.model import (
    CREATES,
    FD_WRITES,
    IGNORED_PARTS,
    IGNORED_PREFIXES,
    NETWORK_FAMILIES,
    O_ACCMODE,
    O_CREAT,
    O_DIRECTORY,
    O_TRUNC,
    PATH_WRITES,
    SCRIPT_SUFFIXES,
    SOCK_DGRAM,
    STDIO_PATHS,
    Conversation,
    Key,
    Obs,
    Origin,
    StreamObs,
    normalize_endpoint,
)
from sysweave.validator.equivalence.processes import Proc
from sysweave.validator.equivalence.settle import edge_roles, finish, strip

# the model's names stay importable from here (observe is where extraction's users look first)
__all__ = ["IGNORED_PARTS", "IGNORED_PREFIXES", "Conversation", "Obs", "Origin", "StreamObs", "edge_roles", "extract",
           "normalize_endpoint"]


class _Paths:
    """Workdir-relative names ("./x"), absolute elsewhere, None for the runtime's own files (memoised)."""

    def __init__(self, home: str | None) -> None:
        self.home = home
        self.runtime_prefixes: set[str] = set()  # PREFIX of every exec'd PREFIX/bin/program (venvs, /usr/local)
        self.cache: dict[tuple[str, str], str | None] = {}

    def rel(self, path: str, cwd: str) -> str | None:
        k = (path, cwd)
        try:
            return self.cache[k]
        except KeyError:
            r = self.cache[k] = self._rel(path, cwd)
            return r

    def _rel(self, path: str, cwd: str) -> str | None:
        if not path.startswith("/"):  # relative to an unknown cwd: relative to the run's cwd
            path = os.path.normpath(path)
            rel = "./" + path if path != "." else "."
            return None if any(p in rel + "/" for p in IGNORED_PARTS) else rel
        if cwd and (path == cwd or path.startswith(cwd + "/")):
            rel = "./" + os.path.relpath(path, cwd) if path != cwd else "."
            return None if any(p in rel + "/" for p in IGNORED_PARTS) else rel
        if path.startswith(IGNORED_PREFIXES) or any(p in path + "/" for p in IGNORED_PARTS):
            return None
        if any(path.startswith(p) for p in self.runtime_prefixes):
            return None
        if self.home and path.startswith(self.home + "/."):
            return None
        return path


class Extractor:
    """The state of one pass over a run's events (see :func:`extract`; :mod:`.settle` finishes it)."""

    def __init__(self, workdir: str, home: str | None, final_state: Callable[[str], FileEffect] | None,
                 capture_stdio: bool) -> None:
        self.workdir = os.path.realpath(workdir) if workdir else ""
        self.paths = _Paths(home)
        self.final_state = final_state
        self.capture_stdio = capture_stdio
        self.tr = FdTracker(self.workdir or None)
        self.obs = Obs()
        self.procs: dict[Key, Proc] = {}
        self.effects: set[Key] = set()
        self.direct: set[Key] = set()  # output effects: stdio, network (what a fork wrapper never has)
        self.bound: dict[int, str] = {}  # socket resource id -> its bound address (normalised)
        self.program_files: set[str] = set()
        self.cwds: dict[str, str] = {}  # host -> the tree's working directory (FileState.cwd)
        self.scope: dict[tuple[str, str], Event] = {}  # (host, absolute path) -> the call that last changed it
        self.created: set[tuple[str, str]] = set()
        self.touched: dict[tuple[Key, str], int] = {}  # (process, path) -> when it first wrote there
        self.first_output: dict[Key, int] = {}  # process -> when it first wrote stdio, a file in scope or the network
        self.tables: dict[Key, dict[int, Resource]] = {}  # live fd tables (fdtrack), for the hot path
        self.file_writes: dict[int, Event] = {}  # FILE resource id -> its last write
        self.file_of: dict[int, tuple[str, str]] = {}  # FILE resource id -> (host, path)
        self.file_pid: dict[int, int] = {}  # FILE resource id -> the pid that wrote it last
        self.io_bytes = 0
        self.reads: list[tuple[Key, str, str, bool]] = []  # (process, host, path, is a directory)
        self.states: dict[tuple[str, str], FileState] = {}
        self.conns: dict[int, Conversation] = {}
        self.dgram_sockets: set[int] = set()
        self.kernel_sockets: set[int] = set()  # sockets of families that are not networks (netlink, ...)
        self.peer: dict[int, str] = {}  # connected datagram socket -> its peer
        self.signal_seen: set[Key] = set()  # processes that reaped a child killed by a signal
        self.signals_sent: dict[Key, int] = {}  # process -> the last signal a traced process sent it
        self.reports: dict[Key, list[tuple[str, int, int]]] = {}  # their stderr writes since: (stream, start, end)
        self.dgram: dict[tuple[str, str], Conversation] = {}
        self.stream_pos: dict[str, int] = {}
        self.strip: list[tuple[str, int, int]] = []
        self.order: Callable[[Event], float] = lambda e: 0.0

    def origin(self, e: Event) -> Origin:
        return Origin(e.h.host_id, e.h.pid, self.order(e))

    def proc(self, host: str, pid: int) -> Proc:
        p = self.procs.get((host, pid))
        if p is None:
            p = self.procs[(host, pid)] = Proc((host, pid))
        return p

    def stream_key(self, host: str, n: int) -> str:
        name = "stdout" if n == 1 else "stderr"
        return name if len(self.obs.hosts) <= 1 else f"{host}: {name}"

    # --- events ---
    def process_event(self, e: ProcessEvent) -> None:
        host = e.h.host_id
        p = self.proc(host, e.h.pid)
        if e.type is ProcessEventType.FORK and e.child_pid:
            self.tables.pop((host, e.child_pid), None)  # a new process: fdtrack makes it a new table
            c = self.proc(host, e.child_pid)
            c.parent, c.fork_ns, c.fork_event = p.key, e.h.mono_ns, e.h.event_id
            self.obs.process_origins[c.key] = self.origin(e)
            p.children.append(c.key)
        elif e.type is ProcessEventType.EXEC:
            p.images.append((e.h.mono_ns, tuple(e.argv) or ((e.filename,) if e.filename else ())))
            cwd = self.tr.cwd(host, e.h.pid) or self.workdir or "/"
            self.program_files |= {os.path.normpath(os.path.join(cwd, x)) for x in (e.filename, *e.argv[:1]) if x}
            for x in e.argv[1:3]:  # a script named on the command line is the runtime's, not input
                full = os.path.normpath(os.path.join(cwd, x))
                if x.endswith(SCRIPT_SUFFIXES) or not (self.workdir and full.startswith(self.workdir + "/")):
                    self.program_files.add(full)
            bindir = os.path.dirname(os.path.normpath(os.path.join(cwd, e.filename)))
            if os.path.basename(bindir) == "bin" and os.path.dirname(bindir) not in ("/", "/usr"):
                self.paths.runtime_prefixes.add(os.path.dirname(bindir) + "/")
                self.paths.cache.clear()  # earlier answers may now be runtime files
        elif e.type is ProcessEventType.EXIT:
            p.exited = True
            p.own_code = e.exit_code  # None: no exit_group, i.e. killed by a signal
        elif e.type is ProcessEventType.WAIT:
            reaped = self.procs.get((host, e.child_pid))
            if reaped is not None:
                reaped.wait_code, reaped.wait_signal = e.exit_code, e.signal
                if e.signal is not None:
                    self.signal_seen.add(p.key)

    def touch(self, e: SyscallSpan, path: str, created: bool = False) -> None:
        k = (e.h.host_id, path)
        self.scope[k] = e
        if created:
            self.created.add(k)
        self.touched.setdefault(((e.h.host_id, e.h.pid), path), e.h.mono_ns)  # an effect if in scope (decided later)

    def syscall(self, e: SyscallSpan) -> None:
        h, name = e.h, e.name
        host, pid = h.host_id, h.pid
        if name in RW_CALLS:  # the hot path: reads and writes never change fd tables, so look the fd up directly
            if e.ret > 0:
                fds = self.tables.get((host, pid))
                if fds is None:
                    fds = self.tables[(host, pid)] = self.tr.live_table(host, pid)
                res = fds.get(e.args.get("fd", -1))  # type: ignore[arg-type]
                if res is None:
                    return
                if res.kind is ResourceKind.FILE:  # the hottest: a write to a file
                    if name in WRITES and res.path in STDIO_PATHS:  # open("/dev/stdout", "w") is stdout
                        self.stdio(e, STDIO_PATHS[res.path], e.ret)
                    elif name in WRITES:
                        self.io_bytes += e.ret
                        self.file_writes[res.id] = e
                        if self.file_pid.get(res.id) != pid:  # a writer of its own (effects, for launchers)
                            self.file_pid[res.id] = pid
                            self.file_of[res.id] = (host, res.path)
                            self.touched.setdefault(((host, pid), res.path), h.mono_ns)
                    return
                res = self.tr.resource(host, pid, e.args.get("fd", -1))  # type: ignore[arg-type]
                if res is not None:
                    self.rw(e, res, name in WRITES, e.ret)
            return
        if name == "close" and e.ret == 0:
            # closing a file changes nothing we compare, and a stale FILE entry cannot mislead: any later
            # use of that fd number either fails (skipped) or first rebinds it (open, dup2, pipe, socket)
            fds = self.tables.get((host, pid))
            if fds is None:
                fds = self.tables[(host, pid)] = self.tr.live_table(host, pid)
            res = fds.get(e.args.get("fd", -1))  # type: ignore[arg-type]
            if res is None or res.kind is ResourceKind.FILE:
                return
        self.proc(host, pid)
        if name in ("kill", "tgkill", "tkill") and e.ret == 0:
            target, sig = e.args.get("tgid", e.args.get("pid")), e.args.get("sig")
            if isinstance(target, int) and isinstance(sig, int) and target > 0 and sig > 0:
                self.signals_sent[(host, target)] = sig
            return
        prior = None
        if name == "connect":
            prior = self.tr.resource(host, pid, int(e.args.get("fd", -1) or 0))  # type: ignore[arg-type]
        acc = self.tr.feed(e)
        if acc is None:
            return
        op, res = acc.op, acc.resource
        if op is Op.OPEN:
            flags = e.args.get("flags", 0) if name != "creat" else O_CREAT | 1
            flags = flags if isinstance(flags, int) else 0
            path = acc.paths[0] if acc.paths else ""
            if flags & O_ACCMODE or flags & (O_CREAT | O_TRUNC):
                self.touch(e, path, bool(flags & O_CREAT))
            else:
                self.reads.append(((host, pid), host, path, bool(flags & O_DIRECTORY)))
        elif op is Op.WRITE or op is Op.READ:  # calls fdtrack knows beyond RW_CALLS
            if res is not None and acc.nbytes > 0:
                self.rw(e, res, op is Op.WRITE, acc.nbytes)
        elif op is Op.SOCKET:
            t, domain = e.args.get("type", 0), e.args.get("domain", 2)
            if res is not None and isinstance(domain, int) and domain not in NETWORK_FAMILIES:
                self.kernel_sockets.add(res.id)  # netlink and the like: an interface to the kernel, like /proc
            elif isinstance(t, int) and t & 0xF == SOCK_DGRAM and res is not None:
                self.dgram_sockets.add(res.id)
        elif op is Op.CONNECT and res is not None and prior is not None and prior.id in self.kernel_sockets:
            self.kernel_sockets.add(res.id)
        elif op is Op.CONNECT and res is not None:
            kind = "datagram" if prior is not None and prior.id in self.dgram_sockets else "stream"
            if prior is not None and prior.id in self.bound:
                self.bound[res.id] = self.bound[prior.id]
            if kind == "datagram":
                self.dgram_sockets.add(res.id)
                self.peer[res.id] = normalize_endpoint(res.remote)
                self.effects.add((host, pid))
            else:
                self.conns[res.id] = self.new_conv(e, res.remote, kind)
        elif op is Op.ACCEPT and res is not None:
            listener = self.tr.resource(host, pid, int(e.args.get("fd", -1) or 0))  # type: ignore[arg-type]
            on = self.bound.get(listener.id, "unbound") if listener is not None else "unknown"
            self.conns[res.id] = self.new_conv(e, "accepted on " + on, "stream")
        elif op is Op.OTHER:
            if name in PATH_WRITES:
                for i, path in enumerate(acc.paths):
                    created = name in CREATES or (name.startswith("rename") and i == 1)
                    self.touch(e, path, created)
            elif name in FD_WRITES and res is not None and res.kind is ResourceKind.FILE:
                self.touch(e, res.path)
            elif name == "bind" and not (res is not None and res.id in self.kernel_sockets):
                ep = normalize_endpoint(str(e.args.get("addr", "")))
                self.obs.listening.setdefault(self.host_prefix(host) + ep, self.origin(e))
                if res is not None:
                    self.bound[res.id] = ep
                self.effects.add((host, pid))
                self.direct.add((host, pid))
                self.first_output.setdefault((host, pid), e.h.mono_ns)

    def rw(self, e: SyscallSpan, res: Resource, write: bool, nbytes: int) -> None:
        """One read or write of ``nbytes`` on ``res``: stdio, a file in scope, a conversation (pipes: plumbing)."""
        self.obs.io_bytes += nbytes
        host = e.h.host_id
        if res.id in self.kernel_sockets:
            return
        if res.kind is ResourceKind.STDIO:
            if write and res.stdio in (1, 2):
                self.stdio(e, res.stdio, nbytes)
        elif res.kind is ResourceKind.FILE:
            if write and res.path in STDIO_PATHS:
                self.stdio(e, STDIO_PATHS[res.path], nbytes)
            elif write:
                self.touch(e, res.path)
        elif res.kind is ResourceKind.CONN and res.id not in self.dgram_sockets:
            c = self.conns.get(res.id)
            if c is None:
                c = self.conns[res.id] = self.new_conv(e, res.remote, "stream")
            self.io(e, c, write, nbytes)
        elif res.kind in (ResourceKind.SOCKET, ResourceKind.CONN):  # datagrams: one conversation per peer
            addr = e.args.get("dest_addr" if write else "src_addr", "")
            addr = normalize_endpoint(str(addr)) if addr and addr != "NULL" else self.peer.get(res.id, "unknown")
            # sent: by destination; received: by the socket's bound address, else by source
            where = f"to {addr}" if write else (f"on {self.bound[res.id]}" if res.id in self.bound else f"from {addr}")
            c = self.dgram.get((host, where))
            if c is None:
                c = self.dgram[(host, where)] = self.new_conv(e, where, "datagram")
            self.io(e, c, write, nbytes)

    def host_prefix(self, host: str) -> str:
        return f"{host}: " if len(self.obs.hosts) > 1 else ""

    def new_conv(self, e: SyscallSpan, remote: str, kind: str) -> Conversation:
        """A conversation named by endpoint: "stream 10.0.0.2:7000", "stream accepted on loopback:0",
        "udp to loopback:8125", "udp on loopback:0" (datagrams received on a bound socket)."""
        ep = remote if kind == "datagram" or remote.startswith("accepted on ") else normalize_endpoint(remote)
        c = Conversation(self.host_prefix(e.h.host_id) + f"{'udp' if kind == 'datagram' else 'stream'} {ep}", kind,
                         origin=self.origin(e))
        self.obs.conversations.setdefault(c.endpoint, []).append(c)
        self.effects.add((e.h.host_id, e.h.pid))
        self.direct.add((e.h.host_id, e.h.pid))
        self.first_output.setdefault((e.h.host_id, e.h.pid), e.h.mono_ns)
        return c

    def io(self, e: SyscallSpan, c: Conversation, write: bool, n: int) -> None:
        payload = e.payload or b""
        direction = "sent" if write else "received"
        c.total += n
        c.captured += min(len(payload), n)
        if c.kind == "datagram":
            c.messages.append((direction, payload[:n]))
            c.ios.append((direction, len(c.messages), self.origin(e)))
        else:
            buf = c.sent if write else c.received
            if len(payload) < n and direction not in c.gaps:  # a capped payload (or writev's first iovec only)
                c.gaps[direction] = len(buf) + len(payload)
            buf += payload[:n]
            c.totals[direction] = c.totals.get(direction, 0) + n
            c.ios.append((direction, c.totals[direction], self.origin(e)))
        self.effects.add((e.h.host_id, e.h.pid))

    def stdio(self, e: SyscallSpan, n: int, nbytes: int) -> None:
        key = self.stream_key(e.h.host_id, n)
        s = self.obs.streams.setdefault(key, StreamObs())
        pos = self.stream_pos.get(key, 0) + nbytes
        self.stream_pos[key] = pos
        s.writes.append((pos, self.origin(e)))
        who = (e.h.host_id, e.h.pid)
        if n == 2 and who in self.signal_seen and who not in self.direct:
            # a shell reporting its child's death by a signal ("Terminated"): the launcher's, not the program's
            self.reports.setdefault(who, []).append((key, pos - nbytes, pos))
        else:
            self.direct.add(who)
            self.first_output.setdefault(who, e.h.mono_ns)
            self.reports.pop(who, None)
        if self.capture_stdio:
            payload = e.payload or b""
            if len(payload) < nbytes and s.gap is None:
                s.gap = len(s.data) + len(payload)
            s.data += payload[:nbytes]
            s.total = pos
        self.effects.add((e.h.host_id, e.h.pid))


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
            tree: dict[str, FileEffect] | None = None) -> Obs:
    """Obs of one run from its events (any order).

    ``workdir``: the run's working directory ("" for a stored trace: each host's comes from its FileState
    events, else paths stay as spelled). ``stdout``/``stderr``: captured whole by the harness; with
    ``capture_stdio`` they are rebuilt from write payloads instead. ``final_state``: reads a path's final
    state where the trace has no FileState for it (the harness's disk reader; None: unknown).
    ``tree``: the workdir's final entries (``./rel`` -> state), all in scope. ``root_pid``: the tree's root
    (0: every process without a traced parent, one per host)."""
    ex = Extractor(workdir, home if home is not None else os.path.expanduser("~"), final_state, capture_stdio)
    evs = list(events)
    ex.obs.hosts, in_order, ex.obs.syscalls = _scan(evs)
    multi = len(ex.obs.hosts) > 1
    if not in_order:
        evs.sort(key=lambda e: (e.h.host_id, e.h.mono_ns, e.h.event_id))
    ex.order = _order_fn(evs, multi)
    ex.obs.events = len(evs)
    _loop(ex, evs)
    finish(ex, evs, root_pid, exit_code, tree)
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


def _loop(ex: Extractor, evs: list[Event]) -> None:
    """Every event through the extractor; writes to files, the bulk of most traces, inline (locals only)."""
    syscall, tables, live, file_writes, file_pid = ex.syscall, ex.tables, ex.tr.live_table, ex.file_writes, ex.file_pid
    file_kind, io_bytes = ResourceKind.FILE, 0
    for e in evs:
        if type(e) is SyscallSpan:
            name = e.name
            if name in WRITES and e.ret > 0:
                h = e.h
                key = (h.host_id, h.pid)
                fds = tables.get(key)
                if fds is None:
                    fds = tables[key] = live(*key)
                res = fds.get(e.args.get("fd", -1))  # type: ignore[arg-type]
                if res is not None and res.kind is file_kind and file_pid.get(res.id) == h.pid:
                    io_bytes += e.ret  # another write by the same writer: only the last change matters
                    file_writes[res.id] = e
                    continue
            syscall(e)
        elif isinstance(e, ProcessEvent):
            ex.process_event(e)
            ex.tr.feed(e)
        elif isinstance(e, FileState):
            ex.states[(e.h.host_id, os.path.normpath(e.path))] = e
            if e.cwd:
                ex.cwds[e.h.host_id] = os.path.normpath(e.cwd)
        elif isinstance(e, LostEvents):
            ex.obs.lost_events += e.count
    ex.io_bytes += io_bytes
