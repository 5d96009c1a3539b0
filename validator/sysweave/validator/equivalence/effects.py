"""What each kind of operation contributes to a run's effects (pure): one handler per operation.

fdtrack (``streams.pipeline.fdtrack``) resolves every successful call into an :class:`~fdresources.Access` whose
:class:`~fdresources.Op` says what kind of operation it was; :data:`BY_OP` maps each kind to the handler that
records its effect in the :class:`~.extraction.Extraction`, and :data:`BY_CALL` does the same, by call name,
for the calls fdtrack files under ``Op.OTHER`` (path writes, fd writes, bind, kill). A new effect is one
handler in one of the two tables. Reads and writes (the bulk of a trace) come through :func:`rw`.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from sysweave.schemas.events import ProcessEvent, ProcessEventType, SyscallSpan
from sysweave.schemas.fscalls import CREATES, FD_WRITES, PATH_WRITES
from sysweave.streams.pipeline.fdresources import Access, Op, Resource, ResourceKind
from sysweave.streams.pipeline.fdtrack import TRANSFERS
from sysweave.validator.equivalence import moved
from sysweave.validator.equivalence.extraction import Extraction, Pending
from sysweave.validator.equivalence.model import (
    EXEC_KILLED_ERRNOS,
    NETWORK_FAMILIES,
    O_ACCMODE,
    O_CREAT,
    O_DIRECTORY,
    O_TRUNC,
    SCRIPT_SUFFIXES,
    SOCK_DGRAM,
    STDIO_PATHS,
    Conversation,
    StreamObs,
    normalize_endpoint,
)
from sysweave.validator.equivalence.pipes import Piece

__all__ = ["BY_CALL", "BY_OP", "Handler", "exec_failed", "process_event", "rw", "stdio", "touch"]

Handler = Callable[[Extraction, SyscallSpan, Access], None]


# --- processes ---
def process_event(ex: Extraction, e: ProcessEvent) -> None:
    """Fork, exec, exit, wait: the process tree, images, exit records; exec'd files are the runtime's."""
    host = e.h.host_id
    p = ex.proc(host, e.h.pid)
    if e.type is ProcessEventType.FORK and e.child_pid:
        ex.tables.pop((host, e.child_pid), None)  # a new process: fdtrack makes it a new table
        c = ex.proc(host, e.child_pid)
        c.parent, c.fork_ns, c.fork_event = p.key, e.h.mono_ns, e.h.event_id
        ex.obs.process_origins[c.key] = ex.origin(e)
        p.children.append(c.key)
    elif e.type is ProcessEventType.EXEC:
        p.images.append((e.h.mono_ns, tuple(e.argv) or ((e.filename,) if e.filename else ())))
        _exec_files(ex, e)
    elif e.type is ProcessEventType.EXIT:
        p.exited = True
        p.own_code = e.exit_code  # None: killed by a signal (no exit_group, or the kernel's record says which)
        p.own_signal = e.signal
        cut = ex.exec_failing.pop(p.key, None)
        if cut is not None and e.exit_code is None and (not p.images or p.images[-1][0] < cut[0]):
            p.images.append(cut)  # killed inside its exec: it is the program it was exec'ing (exec_failed)
    elif e.type is ProcessEventType.WAIT:
        reaped = ex.procs.get((host, e.child_pid))
        if reaped is not None:
            reaped.wait_code, reaped.wait_signal = e.exit_code, e.signal
            if e.signal is not None:
                ex.signal_seen.add(p.key)


def exec_failed(ex: Extraction, e: SyscallSpan) -> None:
    """A failed execve/execveat. With an error a fatal signal causes (model.EXEC_KILLED_ERRNOS), the process
    may die inside it, never reaching the new image; if it then dies of a signal, it was that program, killed
    (the image is added at its exit record, :func:`process_event`)."""
    if -e.ret not in EXEC_KILLED_ERRNOS:
        return
    argv, path = e.args.get("argv"), e.args.get("path")
    named = tuple(str(a) for a in argv) if isinstance(argv, (tuple, list)) and argv else (str(path),) if path else ()
    if named:
        ex.exec_failing[(e.h.host_id, e.h.pid)] = (e.h.mono_ns, named)


def _exec_files(ex: Extraction, e: ProcessEvent) -> None:
    cwd = ex.tracker.cwd(e.h.host_id, e.h.pid) or ex.workdir or "/"
    ex.program_files |= {os.path.normpath(os.path.join(cwd, x)) for x in (e.filename, *e.argv[:1]) if x}
    for x in e.argv[1:3]:  # a script named on the command line is the runtime's, not input
        full = os.path.normpath(os.path.join(cwd, x))
        if x.endswith(SCRIPT_SUFFIXES) or not (ex.workdir and full.startswith(ex.workdir + "/")):
            ex.program_files.add(full)
    bindir = os.path.dirname(os.path.normpath(os.path.join(cwd, e.filename)))
    if os.path.basename(bindir) == "bin" and os.path.dirname(bindir) not in ("/", "/usr"):
        ex.paths.add_runtime_prefix(os.path.dirname(bindir) + "/")


def _kill(ex: Extraction, e: SyscallSpan, acc: Access) -> None:
    target, sig = e.args.get("tgid", e.args.get("pid")), e.args.get("sig")
    if isinstance(target, int) and isinstance(sig, int) and target > 0 and sig > 0:
        ex.signals_sent[(e.h.host_id, target)] = sig


# --- files ---
def touch(ex: Extraction, e: SyscallSpan, path: str, created: bool = False) -> None:
    """``e`` changed ``path`` (an effect if the path is in scope, decided at the end)."""
    k = (e.h.host_id, path)
    ex.scope[k] = e
    if created:
        ex.created.add(k)
    ex.touched.setdefault(((e.h.host_id, e.h.pid), path), e.h.mono_ns)


def _open(ex: Extraction, e: SyscallSpan, acc: Access) -> None:
    flags = e.int_arg("flags", 0) if e.name != "creat" else O_CREAT | 1
    path = acc.paths[0] if acc.paths else ""
    if flags & O_ACCMODE or flags & (O_CREAT | O_TRUNC):
        touch(ex, e, path, bool(flags & O_CREAT))
    else:
        ex.reads.append(((e.h.host_id, e.h.pid), e.h.host_id, path, bool(flags & O_DIRECTORY)))


def _path_write(ex: Extraction, e: SyscallSpan, acc: Access) -> None:
    for i, path in enumerate(acc.paths):
        touch(ex, e, path, e.name in CREATES or (e.name.startswith("rename") and i == 1))


def _fd_write(ex: Extraction, e: SyscallSpan, acc: Access) -> None:
    if acc.resource is not None and acc.resource.kind is ResourceKind.FILE:
        touch(ex, e, acc.resource.path)


# --- sockets ---
def _socket(ex: Extraction, e: SyscallSpan, acc: Access) -> None:
    res, t, domain = acc.resource, e.args.get("type", 0), e.args.get("domain", 2)
    if res is None:
        return
    if isinstance(domain, int) and domain not in NETWORK_FAMILIES:
        ex.kernel_sockets.add(res.id)  # netlink and the like: an interface to the kernel, like /proc
    elif isinstance(t, int) and t & 0xF == SOCK_DGRAM:
        ex.dgram_sockets.add(res.id)


def _connect(ex: Extraction, e: SyscallSpan, acc: Access) -> None:
    res, prior = acc.resource, acc.source  # prior: the socket as it was before it connected
    if res is None:
        return
    if prior is not None and prior.id in ex.kernel_sockets:
        ex.kernel_sockets.add(res.id)
        return
    if prior is not None and prior.id in ex.bound:
        ex.bound[res.id] = ex.bound[prior.id]
    if prior is not None and prior.id in ex.dgram_sockets:
        ex.dgram_sockets.add(res.id)
        ex.peer[res.id] = normalize_endpoint(res.remote, ex.kernel_ports.names)
        ex.effects.add((e.h.host_id, e.h.pid))
    else:
        ex.conns[res.id] = _new_conv(ex, e, res.remote, "stream")


def _accept(ex: Extraction, e: SyscallSpan, acc: Access) -> None:
    if acc.resource is None:
        return
    listener = ex.tracker.resource(e.h.host_id, e.h.pid, e.int_arg("fd"))
    on = ex.bound.get(listener.id, "unbound") if listener is not None else "unknown"
    ex.conns[acc.resource.id] = _new_conv(ex, e, "accepted on " + on, "stream")


def _bind(ex: Extraction, e: SyscallSpan, acc: Access) -> None:
    res, who = acc.resource, (e.h.host_id, e.h.pid)
    if res is not None and res.id in ex.kernel_sockets:
        return
    addr, assigned = str(e.args.get("addr", "")), ex.kernel_ports.at_bind.get(e.h.event_id)
    if assigned is not None:  # bind(0): named by the port the kernel gave it, as its peers name it
        addr = f"{addr.rpartition(':')[0]}:{assigned}"
    ep = normalize_endpoint(addr, ex.kernel_ports.names)
    ex.obs.listening.setdefault(ex.host_prefix(e.h.host_id) + ep, ex.origin(e))
    if res is not None:
        ex.bound[res.id] = ep
    ex.effects.add(who)
    ex.direct.add(who)
    ex.first_output.setdefault(who, e.h.mono_ns)


def _new_conv(ex: Extraction, e: SyscallSpan, remote: str, kind: str) -> Conversation:
    """A conversation named by endpoint: "stream 10.0.0.2:7000", "stream accepted on loopback:0",
    "udp to loopback:8125", "udp on loopback:0" (datagrams received on a bound socket)."""
    ep = remote if kind == "datagram" or remote.startswith("accepted on ") \
        else normalize_endpoint(remote, ex.kernel_ports.names)
    c = Conversation(ex.host_prefix(e.h.host_id) + f"{'udp' if kind == 'datagram' else 'stream'} {ep}", kind,
                     origin=ex.origin(e))
    ex.obs.conversations.setdefault(c.endpoint, []).append(c)
    who = (e.h.host_id, e.h.pid)
    ex.effects.add(who)
    ex.direct.add(who)
    ex.first_output.setdefault(who, e.h.mono_ns)
    return c


# --- bytes moved ---
def _transfer(ex: Extraction, e: SyscallSpan, acc: Access) -> None:
    """Reads and writes fdtrack knows beyond plain read/write: sendfile, splice, tee, copy_file_range move
    bytes from ``acc.source`` into ``acc.resource`` inside the kernel (their bytes: :mod:`.moved`)."""
    res, n = acc.resource, acc.nbytes
    if res is None or n <= 0:
        return
    if acc.op is not Op.WRITE or e.name not in TRANSFERS:
        rw(ex, e, res, acc.op is Op.WRITE, n)
        return
    piece = moved.source_piece(ex, e, acc)
    src = acc.source
    if src is not None and acc.consumed and src.kind in (ResourceKind.CONN, ResourceKind.SOCKET):
        rw(ex, e, src, False, n, piece)  # spliced out of a socket: received, bytes unknown
    rw(ex, e, res, True, n, piece)


def rw(ex: Extraction, e: SyscallSpan, res: Resource, write: bool, nbytes: int, piece: Piece | None = None) -> None:
    """One read or write of ``nbytes`` on ``res``: stdio, a file in scope, a conversation, a pipe's content
    (when the trace moves bytes out of pipes). ``piece``: the bytes, where the call's payload cannot show them
    (moved inside the kernel: a file range, a pipe's bytes, or unknown)."""
    ex.obs.io_bytes += nbytes
    if res.id in ex.kernel_sockets:
        return
    if res.kind is ResourceKind.STDIO:
        if write and res.stdio in (1, 2):
            stdio(ex, e, res.stdio, nbytes)
    elif res.kind is ResourceKind.FILE:
        if write and res.path in STDIO_PATHS:
            stdio(ex, e, STDIO_PATHS[res.path], nbytes)
        elif write:
            touch(ex, e, res.path)
    elif res.kind is ResourceKind.PIPE:
        if ex.model_pipes:
            moved.pipe_io(ex, e, res, write, nbytes, piece)
    elif res.kind is ResourceKind.CONN and res.id not in ex.dgram_sockets:
        c = ex.conns.get(res.id)
        if c is None:
            c = ex.conns[res.id] = _new_conv(ex, e, res.remote, "stream")
        _io(ex, e, c, write, nbytes, piece)
    elif res.kind in (ResourceKind.SOCKET, ResourceKind.CONN):  # datagrams: one conversation per peer
        _io(ex, e, _datagrams(ex, e, res, write), write, nbytes, piece)


def _datagrams(ex: Extraction, e: SyscallSpan, res: Resource, write: bool) -> Conversation:
    """Sent: by destination; received: by the socket's bound address, else by source."""
    addr = e.args.get("dest_addr" if write else "src_addr", "")
    peer = normalize_endpoint(str(addr), ex.kernel_ports.names) if addr and addr != "NULL" else ex.peer.get(res.id, "unknown")
    where = f"to {peer}" if write else (f"on {ex.bound[res.id]}" if res.id in ex.bound else f"from {peer}")
    c = ex.dgram.get((e.h.host_id, where))
    if c is None:
        c = ex.dgram[(e.h.host_id, where)] = _new_conv(ex, e, where, "datagram")
    return c


def _io(ex: Extraction, e: SyscallSpan, c: Conversation, write: bool, n: int, piece: Piece | None = None) -> None:
    """``n`` bytes sent or received: the call's payload, or ``piece`` (bytes moved inside the kernel: a
    placeholder filled by :func:`.moved.settle_moved` once the trace is whole)."""
    later = piece is not None and not isinstance(piece, bytes)
    payload = bytes(n) if later else piece if isinstance(piece, bytes) else e.payload or b""
    direction = "sent" if write else "received"
    c.total += n
    if not later:
        c.captured += min(len(payload), n)
    if c.kind == "datagram":
        if piece is not None and later:
            ex.pending.append(Pending(c, direction, len(c.messages), n, piece))
        c.messages.append((direction, payload[:n]))
        c.ios.append((direction, len(c.messages), ex.origin(e)))
    else:
        buf = c.sent if write else c.received
        if piece is not None and later:
            ex.pending.append(Pending(c, direction, len(buf), n, piece))
        elif len(payload) < n and direction not in c.gaps:  # a capped payload (or writev's first iovec only)
            c.gaps[direction] = len(buf) + len(payload)
        buf += payload[:n]
        c.totals[direction] = c.totals.get(direction, 0) + n
        c.ios.append((direction, c.totals[direction], ex.origin(e)))
    ex.effects.add((e.h.host_id, e.h.pid))


def stdio(ex: Extraction, e: SyscallSpan, n: int, nbytes: int) -> None:
    """A write of ``nbytes`` to stdout (``n`` 1) or stderr (2)."""
    key = ex.stream_key(e.h.host_id, n)
    s = ex.obs.streams.setdefault(key, StreamObs())
    pos = ex.stream_pos.get(key, 0) + nbytes
    ex.stream_pos[key] = pos
    s.writes.append((pos, ex.origin(e)))
    who = (e.h.host_id, e.h.pid)
    if n == 2 and who in ex.signal_seen and who not in ex.direct:
        # a shell reporting its child's death by a signal ("Terminated"): the launcher's, not the program's
        ex.reports.setdefault(who, []).append((key, pos - nbytes, pos))
    else:
        ex.direct.add(who)
        ex.first_output.setdefault(who, e.h.mono_ns)
        ex.reports.pop(who, None)
    if ex.capture_stdio:
        payload = e.payload or b""
        if len(payload) < nbytes and s.gap is None:
            s.gap = len(s.data) + len(payload)
        s.data += payload[:nbytes]
        s.total = pos
    ex.effects.add(who)


def _other(ex: Extraction, e: SyscallSpan, acc: Access) -> None:
    handler = BY_CALL.get(e.name)
    if handler is not None:
        handler(ex, e, acc)


BY_CALL: dict[str, Handler] = {
    **dict.fromkeys(PATH_WRITES, _path_write),
    **dict.fromkeys(FD_WRITES, _fd_write),
    "bind": _bind,
    "vmsplice": moved.vmsplice,
    **dict.fromkeys(("kill", "tgkill", "tkill"), _kill),
}
BY_OP: dict[Op, Handler] = {
    Op.OPEN: _open,
    Op.READ: _transfer,
    Op.WRITE: _transfer,
    Op.SOCKET: _socket,
    Op.CONNECT: _connect,
    Op.ACCEPT: _accept,
    Op.OTHER: _other,
}
