"""PIPE and TCP happens-before edges, from the byte streams the one fd tracker (``fdtrack``) follows (pure).

  PIPE  a write into a pipe or unix socketpair -> the read that returned its first byte
        (fds are followed by ``fdtrack``: creation, fork inheritance, dup, close; byte offsets advance per
         write and per read; a socketpair carries one stream per direction)
  TCP   a send on one host -> the receive on the other host that returned its first byte; connections are
        matched from both ends: the client's connect(server ip:port) and the server's accept(peer ip), with
        the hosts' addresses (HostInfo) and the first bytes of each direction to break ties.

``causality`` adds these edges to a trace (with fork and exit->wait, which assembly derives) and stamps every
event consistently with them; clock sync uses the cross-host (send, receive) pairs.
"""

from __future__ import annotations

import ipaddress
import itertools
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from sysweave.schemas.events import CausalEdge, EdgeKind, HostInfo, SyscallSpan, UnifiedTrace
from sysweave.streams.pipeline.assembly import derived_edge
from sysweave.streams.pipeline.fdresources import Access, Op, Resource, ResourceKind
from sysweave.streams.pipeline.fdtrack import track_streams

__all__ = ["Conn", "Stream", "derive_edges", "match_tcp"]


@dataclass
class Stream:
    """One direction of a byte stream: (event, start offset, length) in order."""

    chunks: list[tuple[SyscallSpan, int, int]] = field(default_factory=list)
    offset: int = 0

    def add(self, e: SyscallSpan, n: int) -> None:
        self.chunks.append((e, self.offset, n))
        self.offset += n

    def data(self, limit: int = 64) -> bytes:
        out = b""
        for e, _, _ in self.chunks:
            out += e.payload or b""
            if len(out) >= limit:
                break
        return out[:limit]


@dataclass
class Conn:
    host: str
    pid: int
    role: str  # "client" | "server" | "pipe"
    remote: str = ""  # client: server ip:port; server: peer ip:port
    out: Stream = field(default_factory=Stream)
    inn: Stream = field(default_factory=Stream)


def _streams(trace: UnifiedTrace) -> tuple[list[Conn], list[Conn]]:
    """Byte streams of every connection and pipe/socketpair direction, from the one fd tracker (fdtrack):
    connections in creation order, and one Conn per pipe direction (``out``: writes, ``inn``: reads)."""
    conns: dict[int, Conn] = {}
    pipes: dict[tuple[int, int], Conn] = {}
    events = [e for p in trace.processes.values() for e in p.events]
    streaming = (ResourceKind.PIPE, ResourceKind.SOCKETPAIR, ResourceKind.CONN)
    # one process whose times strictly increase: already in the tracker's order (host, mono_ns, event_id)
    ordered = len(trace.processes) == 1 and all(a.h.mono_ns < b.h.mono_ns for a, b in itertools.pairwise(events))
    for acc in track_streams(events, ordered=ordered):
        res, op = acc.resource, acc.op
        if op is Op.CONNECT or op is Op.ACCEPT:
            if res is not None:
                conns[res.id] = Conn(res.host, res.pid, res.role, res.remote)
            continue
        if (op is not Op.WRITE and op is not Op.READ) or acc.nbytes <= 0:
            continue
        src = acc.source
        if src is not None and acc.consumed and src.kind in streaming:  # splice/sendfile out of a pipe/socket
            _chunk(conns, pipes, src, False, acc)
        if res is not None and res.kind in streaming:
            _chunk(conns, pipes, res, op is Op.WRITE, acc)
    return list(conns.values()), list(pipes.values())


def _chunk(conns: dict[int, Conn], pipes: dict[tuple[int, int], Conn], res: Resource, write: bool, acc: Access) -> None:
    """Add one read or write of ``acc.nbytes`` to the byte stream it moved bytes through (a connection's
    ``out``/``inn``; for a pipe or socketpair direction, writes feed ``out`` and reads drain ``inn``)."""
    if res.kind is ResourceKind.CONN:
        c = conns.get(res.id)
        if c is not None:
            (c.out if write else c.inn).add(acc.event, acc.nbytes)
        return
    key = (res.id, res.end) if write else (res.id, 1 - res.end)
    p = pipes.get(key)
    if p is None:
        p = pipes[key] = Conn(res.host, res.pid, "pipe")
    (p.out if write else p.inn).add(acc.event, acc.nbytes)


def _match_stream(edges: list[CausalEdge], kind: EdgeKind, send: Stream, recv: Stream,
                  pairs: list[tuple[SyscallSpan, SyscallSpan]] | None) -> None:
    """Edge from the send holding each receive's first byte to that receive."""
    i = 0
    for r, roff, _ in recv.chunks:
        while i < len(send.chunks) and send.chunks[i][1] + send.chunks[i][2] <= roff:
            i += 1
        if i == len(send.chunks):
            break
        s = send.chunks[i][0]
        edges.append(derived_edge(s, r, kind, f"offset {roff}"))
        if pairs is not None:
            pairs.append((s, r))


def _ip(endpoint: str) -> str:
    host = endpoint.rpartition(":")[0].strip("[]")
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return host


def match_tcp(conns: list[Conn], hosts: Iterable[HostInfo]) -> list[tuple[Conn, Conn]]:
    """Client connections paired with the server-side accepted connection of the same TCP connection.

    A server connection on host S accepted from peer ip P matches a client connection on host C to ip X when
    X is one of S's addresses and P one of C's (loopback only within one host); when several candidates
    remain, the first bytes of the client's sends must equal the first bytes of the server's receives."""
    addrs: dict[str, set[str]] = defaultdict(set)
    for h in hosts:
        addrs[h.h.host_id].update(h.addresses)

    def reaches(ip: str, src_host: str, dst_host: str) -> bool:
        if _is_loopback(ip):
            return src_host == dst_host
        return ip in addrs[dst_host] if addrs.get(dst_host) else True

    clients = [c for c in conns if c.role == "client"]
    servers = [c for c in conns if c.role == "server"]
    used: set[int] = set()
    out = []
    for c in clients:
        for k, s in enumerate(servers):
            if k in used or not reaches(_ip(c.remote), c.host, s.host) or not reaches(_ip(s.remote), s.host, c.host):
                continue
            sent, got = c.out.data(16), s.inn.data(16)
            if sent and got and not (sent.startswith(got) or got.startswith(sent)):
                continue
            used.add(k)
            out.append((c, s))
            break
    return out


def _is_loopback(ip: str) -> bool:
    try:
        return ipaddress.ip_address(ip).is_loopback
    except ValueError:
        return False


def derive_edges(trace: UnifiedTrace) -> tuple[list[CausalEdge], list[tuple[SyscallSpan, SyscallSpan]]]:
    """PIPE and TCP edges, plus the (send, receive) pairs across hosts that clock sync uses."""
    conns, pipes = _streams(trace)
    edges: list[CausalEdge] = []
    pairs: list[tuple[SyscallSpan, SyscallSpan]] = []
    for p in pipes:
        _match_stream(edges, EdgeKind.PIPE, p.out, p.inn, None)
    for client, server in match_tcp(conns, trace.hosts):
        cross = client.host != server.host
        _match_stream(edges, EdgeKind.TCP, client.out, server.inn, pairs if cross else None)
        _match_stream(edges, EdgeKind.TCP, server.out, client.inn, pairs if cross else None)
    return edges, pairs
