"""The one fd/byte-stream tracker (pure): what every file descriptor of every process refers to.

Feed it a host's events in program order (``mono_ns``, then ``event_id``; :func:`track` sorts for you) and it
answers, per system call, which *resource* the call used or created and which paths it named, resolved
against the calling process's working directory (an :class:`Access` of a :class:`Resource`: ``fdresources``).
Causality builds byte streams (pipe and TCP edges) from its answers; the validator's Obs extraction builds
files, connections and stdio from the same answers.

State, keyed by ``(host_id, pid)`` (a pid is the kernel tgid, so a process's threads share one table):

* fd table ``fd -> Resource``, with the close-on-exec set;
* working directory (``chdir``, ``fchdir``; ``cwd`` given to the tracker for processes first seen without
  a traced parent; ``None`` leaves their relative paths relative).

What changes it:

======================================  =====================================================================
ProcessEvent FORK (parent -> child)     the child gets a copy of the parent's table and cwd (later changes on
                                        either side are independent); THREAD: nothing (same pid, same table)
ProcessEvent EXEC                       fds marked close-on-exec are closed
open/openat/openat2/creat               FILE resource, path resolved (cwd, or ``dirfd`` for the ``*at`` calls)
socket                                  SOCKET (unconnected); connect (0 or -EINPROGRESS) turns that socket,
                                        in every table that shares it, into a CONN (role "client")
accept/accept4                          a new CONN (role "server", remote = the peer address)
pipe/pipe2                              one PIPE resource, two ends: ``end`` 0 reads, 1 writes
socketpair                              one SOCKETPAIR resource, two ends 0 and 1 (both directions)
dup/dup2/dup3, fcntl F_DUPFD(_CLOEXEC)  the new fd refers to the same resource (``ret`` is the new fd)
fcntl F_SETFD                           sets/clears close-on-exec
close, close_range                      drop fds (close_range with CLOSE_RANGE_CLOEXEC only marks them)
chdir/fchdir                            the process's cwd
sendfile/splice/copy_file_range/tee     a WRITE into the out fd whose bytes came from the in fd (``source``)
======================================  =====================================================================

Byte streams: a write on end ``e`` of a resource goes into stream ``(id, e)``; a read on end ``e`` takes
from stream ``(id, 1 - e)`` (:meth:`Resource.stream`). For a pipe that is one stream ``(id, 1)``; for a
socketpair two, one per direction; for a connection ``(id, 0)`` is what this end sent and ``(id, 1)``
what it received (the other end lives in another process or host and is matched by causality).

Worked example (one host; fd 0-2 of a process first seen are its inherited stdio)::

    >>> from sysweave.schemas.events import EventHeader, ProcessEvent, ProcessEventType, SyscallSpan
    >>> def sc(pid, t, name, ret, **a):
    ...     return SyscallSpan(EventHeader(bytes([t]) * 16, "h", pid, pid, t, t), 0, name, ret, a)
    >>> fork = ProcessEvent(EventHeader(bytes([3]) * 16, "h", 10, 10, 3, 3), ProcessEventType.FORK, 10, 11)
    >>> tr = FdTracker(cwd="/work")
    >>> tr.feed(sc(10, 1, "pipe2", 0, pipefd=(3, 4))).resource.kind
    <ResourceKind.PIPE: 'pipe'>
    >>> _ = tr.feed(sc(10, 2, "chdir", 0, path="out"))
    >>> tr.feed(fork)                                   # child 11 inherits fds 3, 4 and cwd /work/out
    >>> w = tr.feed(sc(10, 4, "write", 5, fd=4))
    >>> r = tr.feed(sc(11, 5, "read", 5, fd=3))
    >>> (w.op, w.nbytes, w.stream == r.stream == (r.resource.id, 1))
    (<Op.WRITE: 'write'>, 5, True)
    >>> tr.feed(sc(11, 6, "openat", 5, dirfd=-100, path="../log.txt", flags=0o101)).resource.path
    '/work/log.txt'
    >>> tr.feed(sc(11, 7, "dup2", 1, oldfd=5, newfd=1)).resource.path   # stdout now goes to the file
    '/work/log.txt'
    >>> tr.resource("h", 10, 1).kind                    # the parent's stdout is still its stdio
    <ResourceKind.STDIO: 'stdio'>
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace

from sysweave.schemas.events import Event, ProcessEvent, ProcessEventType, SyscallSpan
from sysweave.streams.pipeline.fdresources import Access, Op, Resource, ResourceKind

__all__ = ["AT_FDCWD", "EINPROGRESS", "READS", "RW_CALLS", "TRANSFERS", "WRITES", "FdTracker", "track", "track_streams"]

AT_FDCWD = -100
EINPROGRESS = 115
O_CLOEXEC = 0o2000000  # also SOCK_CLOEXEC (socket/socketpair type, accept4 flags, pipe2 flags)
F_DUPFD, F_SETFD, F_DUPFD_CLOEXEC = 0, 2, 1030
FD_CLOEXEC = 1
CLOSE_RANGE_CLOEXEC = 1 << 2

WRITES = frozenset({"write", "writev", "pwrite64", "pwritev", "pwritev2", "sendto", "sendmsg"})
READS = frozenset({"read", "readv", "pread64", "preadv", "preadv2", "recvfrom", "recvmsg"})
RW_CALLS = WRITES | READS  # plain reads and writes: they change no fd table (the fast path, :meth:`FdTracker.io_target`)
# in-kernel transfers: call -> (out fd argument, in fd argument) as decoded by name, then as raw arguments
TRANSFERS = {"sendfile": ("out_fd", "in_fd", "arg0", "arg1"), "splice": ("fd_out", "fd_in", "arg2", "arg0"),
             "copy_file_range": ("fd_out", "fd_in", "arg2", "arg0"), "tee": ("fd_out", "fd_in", "arg1", "arg0")}
_OPENS = frozenset({"open", "openat", "openat2", "creat"})
# path argument -> the dirfd argument it is relative to (decoded names, see agents' syscall_args)
_PATH_ARGS = (("path", "dirfd"), ("oldpath", "olddirfd"), ("newpath", "newdirfd"), ("linkpath", "newdirfd"))


@dataclass
class _Table:
    fds: dict[int, Resource] = field(default_factory=dict)
    cloexec: set[int] = field(default_factory=set)

    def set(self, fd: int, res: Resource, cloexec: bool = False) -> None:
        self.fds[fd] = res
        if cloexec:
            self.cloexec.add(fd)
        else:
            self.cloexec.discard(fd)

    def drop(self, fd: int) -> Resource | None:
        self.cloexec.discard(fd)
        return self.fds.pop(fd, None)


def _int(v: object, default: int = -1) -> int:
    return v if isinstance(v, int) and not isinstance(v, bool) else default


class FdTracker:
    """fd tables and working directories of every process on every host; see the module docstring.

    ``cwd``: the working directory of processes first seen without a traced parent (e.g. the workdir the
    harness started the program in); None when unknown (relative paths then stay relative).
    """

    def __init__(self, cwd: str | None = None) -> None:
        self._cwd0 = os.path.normpath(cwd) if cwd else None
        self._tables: dict[tuple[str, int], _Table] = {}
        self._cwds: dict[tuple[str, int], str | None] = {}
        self._connected: dict[int, Resource] = {}  # SOCKET id -> the CONN it became
        self._next = 0
        # True once a pipe, socket pair, socket or connection exists: before that no read or write can move
        # bytes through a stream (most traces never make one: track_streams skips their reads and writes)
        self.made_streams = False

    # --- queries ---
    def resource(self, host: str, pid: int, fd: int) -> Resource | None:
        """What ``fd`` of process (host, pid) refers to now (None: not open, or unknown)."""
        res = self._table(host, pid).fds.get(fd)
        return self._connected.get(res.id, res) if res is not None and res.kind is ResourceKind.SOCKET else res

    def fds(self, host: str, pid: int) -> dict[int, Resource]:
        """A snapshot of the process's fd table."""
        return {fd: r for fd in list(self._table(host, pid).fds) if (r := self.resource(host, pid, fd))}

    def live_table(self, host: str, pid: int) -> dict[int, Resource]:
        """The process's live fd -> resource map, for readers that look up every read/write (read it, never
        write it; it stays the same object until a FORK makes a new process with that pid; a connected
        socket still shows as SOCKET there: :meth:`resource` resolves it)."""
        return self._table(host, pid).fds

    def cwd(self, host: str, pid: int) -> str | None:
        self._table(host, pid)
        return self._cwds[(host, pid)]

    def resolve(self, host: str, pid: int, path: str, dirfd: int = AT_FDCWD) -> str:
        """``path`` as the process would resolve it: absolute paths as they are; relative ones against
        ``dirfd``'s path (the ``*at`` calls) or the cwd. Normalised (``a/../b`` -> ``b``), no symlinks."""
        if path.startswith("/"):
            return os.path.normpath(path)
        base = self.cwd(host, pid)
        if dirfd != AT_FDCWD:
            res = self.resource(host, pid, dirfd)
            base = res.path if res is not None and res.kind is ResourceKind.FILE else None
        return os.path.normpath(os.path.join(base, path)) if base else (os.path.normpath(path) if path else "")

    def idle_io(self, e: Event, kinds: frozenset[ResourceKind]) -> bool:
        """True when ``e`` is a read or write (``READS``/``WRITES``) that moved no byte or moved bytes through a
        resource not of ``kinds`` (a connected socket counts as CONN): feeding it would change nothing (reads
        and writes leave every table as it was) and answer nothing such a caller looks at, so it may skip
        :meth:`feed`. Most calls of a trace are such; this answers them without building an Access."""
        if type(e) is not SyscallSpan or e.name not in RW_CALLS:
            return False
        if e.ret <= 0:
            return True
        res = self.io_target(e)[1]
        return res is None or res.kind not in kinds

    def io_target(self, e: SyscallSpan) -> tuple[int, Resource | None]:
        """For a read or write (:data:`RW_CALLS`): the fd it used and what that fd refers to now — a socket
        connected since as its connection (CONN) — without feeding it (reads and writes change no table). The
        one fd-table fast path: :func:`track_streams` and the validator's extraction answer most calls of a
        trace with it instead of :meth:`feed`."""
        h = e.h
        t = self._tables.get((h.host_id, h.pid)) or self._table(h.host_id, h.pid)
        fd = e.args.get("fd", -1)
        if type(fd) is not int:
            fd = _int(fd)
        res = t.fds.get(fd)
        if res is not None and res.kind is ResourceKind.SOCKET:
            res = self._connected.get(res.id, res)
        return fd, res

    # --- updates ---
    def feed(self, e: Event) -> Access | None:
        """Apply one event; return what a successful system call did (None for other events, failed calls)."""
        if isinstance(e, ProcessEvent):
            self._process(e)
            return None
        if not isinstance(e, SyscallSpan):
            return None
        if e.ret < 0 and not (e.name == "connect" and e.ret == -EINPROGRESS):
            return None  # a non-blocking connect returns EINPROGRESS and then carries the connection
        h = e.h  # the caller's table made first (its stdio numbered before anything the call creates)
        return _BY_CALL.get(e.name, FdTracker._other)(self, e, self._table(h.host_id, h.pid))

    def _table(self, host: str, pid: int) -> _Table:
        t = self._tables.get((host, pid))
        if t is None:
            t = self._tables[(host, pid)] = _Table()
            for n in (0, 1, 2):
                t.set(n, self._new(ResourceKind.STDIO, host, pid, stdio=n))
            self._cwds.setdefault((host, pid), self._cwd0)
        return t

    def _new(self, kind: ResourceKind, host: str, pid: int, *, path: str = "", remote: str = "", role: str = "",
             stdio: int = -1) -> Resource:
        self._next += 1
        if kind in _MAY_STREAM:
            self.made_streams = True
        return Resource(kind, self._next, host, pid, path=path, remote=remote, role=role, stdio=stdio)

    def _process(self, e: ProcessEvent) -> None:
        host, pid = e.h.host_id, e.h.pid
        if e.type is ProcessEventType.FORK and e.child_pid:
            parent = self._table(host, pid)
            self._tables[(host, e.child_pid)] = _Table(dict(parent.fds), set(parent.cloexec))
            self._cwds[(host, e.child_pid)] = self._cwds[(host, pid)]
        elif e.type is ProcessEventType.EXEC:
            t = self._table(host, pid)
            for fd in list(t.cloexec):
                t.drop(fd)

    # --- one handler per family of system calls (:data:`_BY_CALL`), each given the caller's table ---
    def _rw(self, e: SyscallSpan, t: _Table) -> Access:
        fd = _int(e.args.get("fd"))
        return Access(e, Op.WRITE if e.name in WRITES else Op.READ, self._deref(t.fds.get(fd)), fd, nbytes=max(e.ret, 0))

    def _transfer(self, e: SyscallSpan, t: _Table) -> Access:
        a = e.args
        out_name, in_name, out_raw, in_raw = TRANSFERS[e.name]
        out_fd = _int(a.get(out_name, a.get(out_raw)))
        in_fd = _int(a.get(in_name, a.get(in_raw)))
        return Access(e, Op.WRITE, self._deref(t.fds.get(out_fd)), out_fd, in_fd, max(e.ret, 0),
                      source=self._deref(t.fds.get(in_fd)), consumed=e.name != "tee")

    def _open(self, e: SyscallSpan, t: _Table) -> Access:
        h, a = e.h, e.args
        path = self.resolve(h.host_id, h.pid, str(a.get("path", "")), _int(a.get("dirfd"), AT_FDCWD))
        flags = _int(a.get("flags"), 0) if e.name != "creat" else 0
        res = self._new(ResourceKind.FILE, h.host_id, h.pid, path=path)
        t.set(e.ret, res, bool(flags & O_CLOEXEC))
        return Access(e, Op.OPEN, res, e.ret, paths=(path,))

    def _close(self, e: SyscallSpan, t: _Table) -> Access:
        fd = _int(e.args.get("fd"))
        return Access(e, Op.CLOSE, self._deref(t.drop(fd)), fd)

    def _close_range(self, e: SyscallSpan, t: _Table) -> Access:
        a = e.args
        first = _int(a.get("first", a.get("fd", a.get("arg0"))), 0)
        last = _int(a.get("last", a.get("max_fd", a.get("arg1"))), 0)
        flags = _int(a.get("flags", a.get("arg2")), 0)
        for n in [n for n in t.fds if first <= (n & 0xFFFFFFFF) <= (last & 0xFFFFFFFF)]:  # unsigned, as the kernel
            if flags & CLOSE_RANGE_CLOEXEC:
                t.cloexec.add(n)
            else:
                t.drop(n)
        return Access(e, Op.CLOSE)

    def _dup(self, e: SyscallSpan, t: _Table) -> Access:
        """dup/dup2/dup3 and fcntl F_DUPFD(_CLOEXEC): ``ret`` is the new fd."""
        name, a, ret = e.name, e.args, e.ret
        old = _int(a.get("oldfd", a.get("fd")))
        shared = t.fds.get(old)
        cloexec = (name == "dup3" and bool(_int(a.get("flags"), 0) & O_CLOEXEC)) or (
            name == "fcntl" and a.get("cmd") == F_DUPFD_CLOEXEC)
        if shared is None:
            t.drop(ret)  # dup2 over an open fd closes it first
        elif ret != old:
            t.set(ret, shared, cloexec)
        return Access(e, Op.DUP, self._deref(shared), ret)

    def _fcntl(self, e: SyscallSpan, t: _Table) -> Access:
        """F_DUPFD(_CLOEXEC) duplicates, F_SETFD sets close-on-exec; any other command changes no table."""
        cmd, fd = e.args.get("cmd"), _int(e.args.get("fd"))
        if cmd in (F_DUPFD, F_DUPFD_CLOEXEC):
            return self._dup(e, t)
        if cmd != F_SETFD or fd not in t.fds:
            return self._other(e, t)
        if _int(e.args.get("arg"), 0) & FD_CLOEXEC:
            t.cloexec.add(fd)
        else:
            t.cloexec.discard(fd)
        return Access(e, Op.OTHER, self._deref(t.fds.get(fd)), fd)

    def _pipe(self, e: SyscallSpan, t: _Table) -> Access:
        """pipe/pipe2/socketpair: one resource, two ends (0 and 1) on the two fds the call returned."""
        name, a = e.name, e.args
        pair = a.get("pipefd", a.get("sv"))
        if not (isinstance(pair, tuple) and len(pair) == 2):
            return Access(e, Op.PIPE)
        kind = ResourceKind.SOCKETPAIR if name == "socketpair" else ResourceKind.PIPE
        cloexec = bool(_int(a.get("type" if name == "socketpair" else "flags"), 0) & O_CLOEXEC)
        r0 = self._new(kind, e.h.host_id, e.h.pid)
        r1 = replace(r0, end=1)
        t.set(int(pair[0]), r0, cloexec)
        t.set(int(pair[1]), r1, cloexec)
        return Access(e, Op.PIPE, r0, int(pair[0]), int(pair[1]))

    def _socket(self, e: SyscallSpan, t: _Table) -> Access:
        res = self._new(ResourceKind.SOCKET, e.h.host_id, e.h.pid)
        t.set(e.ret, res, bool(_int(e.args.get("type"), 0) & O_CLOEXEC))
        return Access(e, Op.SOCKET, res, e.ret)

    def _connect(self, e: SyscallSpan, t: _Table) -> Access:
        fd = _int(e.args.get("fd"))
        res = self._new(ResourceKind.CONN, e.h.host_id, e.h.pid, remote=str(e.args.get("addr", "")), role="client")
        sock = t.fds.get(fd)
        before = self._deref(sock)
        if sock is not None and sock.kind is ResourceKind.SOCKET:
            self._connected[sock.id] = res  # every fd sharing that socket (dup, fork) now sees the connection
        else:
            t.set(fd, res, fd in t.cloexec)
        return Access(e, Op.CONNECT, res, fd, source=before)

    def _accept(self, e: SyscallSpan, t: _Table) -> Access:
        a = e.args
        res = self._new(ResourceKind.CONN, e.h.host_id, e.h.pid, remote=str(a.get("addr", "")), role="server")
        t.set(e.ret, res, e.name == "accept4" and bool(_int(a.get("flags"), 0) & O_CLOEXEC))
        return Access(e, Op.ACCEPT, res, e.ret)

    def _chdir(self, e: SyscallSpan, t: _Table) -> Access:
        """chdir (a path) and fchdir (an fd opened on a directory; an unknown one leaves the cwd unknown)."""
        host, pid, fd = e.h.host_id, e.h.pid, _int(e.args.get("fd"))
        if e.name == "chdir":
            new: str | None = self.resolve(host, pid, str(e.args.get("path", "")))
        else:
            dres = self._deref(t.fds.get(fd))
            new = dres.path if dres is not None and dres.kind is ResourceKind.FILE else None
        self._cwds[(host, pid)] = new
        return Access(e, Op.CHDIR, fd=fd, paths=(new,) if new else ())

    def _other(self, e: SyscallSpan, t: _Table) -> Access:
        """Any call that changes no fd table: its fd's resource, and every path argument it names, resolved."""
        host, pid, a = e.h.host_id, e.h.pid, e.args
        fd = _int(a.get("fd"))
        paths = tuple(self.resolve(host, pid, str(a[p]), _int(a.get(d), AT_FDCWD))
                      for p, d in _PATH_ARGS if isinstance(a.get(p), str))
        return Access(e, Op.OTHER, self._deref(t.fds.get(fd)) if fd >= 0 else None, fd, paths=paths)

    def _deref(self, res: Resource | None) -> Resource | None:
        return self._connected.get(res.id, res) if res is not None and res.kind is ResourceKind.SOCKET else res


# system call name -> its family's handler (a call not named here is ``_other``): one lookup per call
_BY_CALL: dict[str, Callable[[FdTracker, SyscallSpan, _Table], Access]] = {
    **dict.fromkeys(RW_CALLS, FdTracker._rw), **dict.fromkeys(TRANSFERS, FdTracker._transfer),
    **dict.fromkeys(_OPENS, FdTracker._open), "close": FdTracker._close, "close_range": FdTracker._close_range,
    **dict.fromkeys(("dup", "dup2", "dup3"), FdTracker._dup), "fcntl": FdTracker._fcntl,
    **dict.fromkeys(("pipe", "pipe2", "socketpair"), FdTracker._pipe), "socket": FdTracker._socket,
    "connect": FdTracker._connect, **dict.fromkeys(("accept", "accept4"), FdTracker._accept),
    **dict.fromkeys(("chdir", "fchdir"), FdTracker._chdir)}


def track(events: Iterable[Event], cwd: str | None = None) -> Iterator[Access]:
    """Feed ``events`` (any order) to a new tracker in program order per host — (host, mono_ns, event_id) —
    and yield every Access. Example: ``[a.stream for a in track(trace_events) if a.op is Op.WRITE]``."""
    tr = FdTracker(cwd)
    for e in sorted(events, key=lambda x: (x.h.host_id, x.h.mono_ns, x.h.event_id)):
        acc = tr.feed(e)
        if acc is not None:
            yield acc


_STREAMING = frozenset({ResourceKind.PIPE, ResourceKind.SOCKETPAIR, ResourceKind.CONN})
_MAY_STREAM = _STREAMING | {ResourceKind.SOCKET}  # a socket becomes a CONN when it connects or is accepted


def track_streams(events: Iterable[Event], ordered: bool = False) -> Iterator[Access]:
    """What byte streams are made of, as :func:`track` answers it but only that: the Access of every connect
    and accept, and of every read or write of at least one byte (transfers included) — exactly ``track``'s
    answers filtered to those — with plain reads and writes resolved inline (no Access for the ones that
    move bytes through a file, stdio or an unknown fd: most calls of a trace). ``ordered``: ``events`` are
    already in ``track``'s order (one process's events as assembly sorts them)."""
    tr = FdTracker()
    streaming, rw, writes, target = _STREAMING, RW_CALLS, WRITES, tr.io_target
    last: tuple[str | None, int | None] = (None, None)  # the process whose fd table surely exists
    for e in events if ordered else sorted(events, key=lambda x: (x.h.host_id, x.h.mono_ns, x.h.event_id)):
        if type(e) is SyscallSpan and e.name in rw:
            if e.ret < 0:
                continue  # failed: feed makes nothing for it either
            h = e.h  # the process's fd table made as feed makes it, so resource ids are numbered as in track
            if h.pid != last[1] or h.host_id != last[0]:  # (one lookup per run of a process's calls)
                last = (h.host_id, h.pid)
                tr.live_table(*last)
            if e.ret == 0 or not tr.made_streams:
                continue  # no byte moved, or no stream exists yet
            fd, res = target(e)
            if res is None or res.kind not in streaming:
                continue
            yield Access(e, Op.WRITE if e.name in writes else Op.READ, res, fd, nbytes=e.ret)
            continue
        acc = tr.feed(e)
        if acc is not None and (acc.op is Op.CONNECT or acc.op is Op.ACCEPT or (
                (acc.op is Op.READ or acc.op is Op.WRITE) and acc.nbytes > 0)):
            yield acc
