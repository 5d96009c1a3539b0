"""What the fd tracker (:mod:`~sysweave.streams.pipeline.fdtrack`) answers in: the values, apart from the tracker.

A :class:`Resource` is what an fd refers to (its :class:`ResourceKind`, and for streams which end), an
:class:`Access` is what one successful system call did with resources (its :class:`Op`). Causality builds
byte streams from them, the validator's Obs extraction files, connections and stdio; both import them from
here, and only the tracker makes them.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from sysweave.schemas.events import SyscallSpan

__all__ = ["Access", "Op", "Resource", "ResourceKind"]


class ResourceKind(enum.StrEnum):
    STDIO = "stdio"  # fd 0/1/2 inherited from outside the trace (``Resource.stdio`` says which)
    FILE = "file"  # opened by path (regular file, directory, device: whatever the path named)
    PIPE = "pipe"
    SOCKETPAIR = "socketpair"
    SOCKET = "socket"  # created by socket(), not (yet) connected: listening, UDP, or before connect
    CONN = "conn"  # a connected stream socket: connect()ed ("client") or accept()ed ("server")


@dataclass(frozen=True, slots=True)
class Resource:
    """What an fd refers to (one open file description, or one end of a pipe/socketpair).

    ``id`` is unique within a tracker (creation order, from 1) and shared by both ends of a pipe or
    socketpair; ``end`` tells the ends apart (pipe: 0 read, 1 write; socketpair: 0 and 1; others 0).
    ``host``/``pid``: the process that created it. ``path``: FILE, the resolved path (absolute unless the
    tracker's cwd was unknown). ``remote``: CONN, the peer address as decoded (client: connect's address,
    server: the address accept returned), e.g. "10.0.0.2:7000". ``role``: CONN, "client" or "server".
    ``stdio``: STDIO, the inherited descriptor number 0, 1 or 2 (-1 otherwise).
    """

    kind: ResourceKind
    id: int
    host: str = ""
    pid: int = 0
    end: int = 0
    path: str = ""
    remote: str = ""
    role: str = ""
    stdio: int = -1

    def stream(self, write: bool) -> tuple[int, int] | None:
        """The byte stream a write (``write=True``) or read on this end moves bytes through: ``(id, e)``
        for writes on end e, ``(id, 1 - e)`` for reads. None for files, stdio and unconnected sockets."""
        if self.kind not in (ResourceKind.PIPE, ResourceKind.SOCKETPAIR, ResourceKind.CONN):
            return None
        return (self.id, self.end) if write else (self.id, 1 - self.end)


class Op(enum.StrEnum):
    OPEN = "open"  # resource: the new FILE
    READ = "read"  # resource: the fd's; nbytes = ret
    WRITE = "write"
    CLOSE = "close"  # resource: what the fd referred to (None for close_range, several fds)
    DUP = "dup"  # resource: the shared one; fd = the new fd
    PIPE = "pipe"  # pipe/pipe2/socketpair; resource: end 0 (fd = its fd), fd2 = end 1's fd
    SOCKET = "socket"
    CONNECT = "connect"  # resource: the new CONN
    ACCEPT = "accept"
    CHDIR = "chdir"  # paths: (new cwd,)
    OTHER = "other"  # any other successful call; paths: the resolved paths it names (rename, unlink, ...)


@dataclass(slots=True)  # one per call on the hot path: not frozen (frozen construction costs ~2x)
class Access:
    """What one successful system call did, as the tracker resolved it.

    ``fd``: the descriptor used (reads, writes, close, connect) or created (open, dup, accept, socket,
    pipe's end 0); -1 when none. ``resource``: see :class:`Op` (None when the fd was unknown, e.g. an fd
    inherited from outside the trace other than 0-2). ``paths``: every path argument, resolved, in argument
    order (open's path; rename's old and new; chdir's new cwd). ``stream``: the byte-stream key of a read or
    write (:meth:`Resource.stream`), None otherwise. In-kernel transfers (sendfile, splice, copy_file_range,
    tee) are a WRITE of ``nbytes`` into ``resource`` (fd ``fd``, no payload) whose bytes came from ``source``
    (fd ``fd2``); ``consumed`` tells whether they were taken from it (all but tee, which copies). A CONNECT's
    ``source`` is what its fd referred to before (the socket it connected; None when the fd was unknown).
    """

    event: SyscallSpan
    op: Op
    resource: Resource | None = None
    fd: int = -1
    fd2: int = -1
    nbytes: int = 0
    paths: tuple[str, ...] = ()
    source: Resource | None = None
    consumed: bool = False

    @property
    def stream(self) -> tuple[int, int] | None:
        if self.resource is None or self.op not in (Op.READ, Op.WRITE):
            return None
        return self.resource.stream(self.op is Op.WRITE)
