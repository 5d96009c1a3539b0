"""Happens-before edges derived from what the agents saw, and causal stamps consistent with them (pure).

Edges (besides fork and exit->wait, which assembly derives):
  PIPE  a write into a pipe or unix socketpair -> the read that returned its first byte
        (fds are followed by the one tracker, ``fdtrack``: creation, fork inheritance, dup, close;
         byte offsets advance per write and per read; a socketpair carries one stream per direction)
  TCP   a send on one host -> the receive on the other host that returned its first byte; connections are
        matched from both ends: the client's connect(server ip:port) and the server's accept(peer ip), with
        the hosts' addresses (HostInfo) and the first bytes of each direction to break ties.

``lamport_stamps`` then gives every event a Lamport value with: program order within a thread, and every
edge src -> dst, implying stamp(src) < stamp(dst) (Kahn's topological order over those relations), never
lower than the stamp the agent gave it.
"""

from __future__ import annotations

import ipaddress
import itertools
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

from sysweave.schemas.clocks import HLC_LOGICAL_BITS, HLC_TICKS_PER_S, VectorClock
from sysweave.schemas.events import (
    CausalEdge,
    CausalStamp,
    EdgeKind,
    Event,
    EventHeader,
    HostInfo,
    SyscallSpan,
    UnifiedTrace,
)
from sysweave.streams.pipeline.assembly import derived_edge
from sysweave.streams.pipeline.fdresources import Access, Op, Resource, ResourceKind
from sysweave.streams.pipeline.fdtrack import track_streams

__all__ = ["Conn", "Stream", "add_derived_edges", "apply_causality", "causal_order", "causal_stamps", "derive_edges",
           "lamport_stamps",
           "match_tcp", "restamp_lamport", "vector_stamps", "with_stamp"]


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


def _threads(trace: UnifiedTrace) -> tuple[list[list[Event]], dict[bytes, list[bytes]]]:
    """Each thread's events in program order (processes by key, threads by tid), and the edge sources of each
    event that has any (edges between events of the trace only, no self-edges)."""
    seqs: list[list[Event]] = []
    for key in sorted(trace.processes):
        evs = trace.processes[key].events
        heads = [e.h for e in evs]
        monos = [h.mono_ns for h in heads]
        if monos != sorted(monos):
            evs = sorted(evs, key=lambda x: (x.h.mono_ns, x.h.event_id))  # assembly leaves them sorted
        if len({h.tid for h in heads}) == 1:
            seqs.append(evs)
            continue
        by_tid: dict[int, list[Event]] = defaultdict(list)
        for e in evs:
            by_tid[e.h.tid].append(e)
        seqs.extend(by_tid[t] for t in sorted(by_tid))
    remote: dict[bytes, list[bytes]] = defaultdict(list)
    if trace.edges:
        known = {e.h.event_id for seq in seqs for e in seq}
        for edge in trace.edges:
            if edge.src in known and edge.dst in known and edge.src != edge.dst:
                remote[edge.dst].append(edge.src)
    return seqs, remote


Visit = tuple[Event, "bytes | None", "Sequence[bytes]"]  # (event, program-order predecessor, edge sources)


def causal_order(trace: UnifiedTrace) -> list[Visit]:
    """Every process event once, after its program-order predecessor (same thread: ``host/pid/tid``, by
    ``mono_ns`` then ``event_id``) and after the source of every edge into it: a topological order of program
    order + edges, with each event's predecessors. Linear: threads run until an event waits for an edge source
    not yet visited and resume when it is. Events on a cycle (a capture or clock anomaly) are taken earliest
    first, with the sources already visited, so every event appears exactly once."""
    seqs, remote = _threads(trace)
    if not remote:  # program order alone: each thread in turn, exactly what the scheduler below does
        return [(e, seq[i - 1].h.event_id if i else None, ()) for seq in seqs for i, e in enumerate(seq)]
    done: set[bytes] = set()
    waiting: dict[bytes, list[int]] = defaultdict(list)
    pos = [0] * len(seqs)
    out: list[Visit] = []
    runnable = list(range(len(seqs) - 1, -1, -1))

    def run(ti: int) -> None:
        seq, i = seqs[ti], pos[ti]
        prev = seq[i - 1].h.event_id if i else None
        while i < len(seq):
            e = seq[i]
            eid = e.h.event_id
            srcs = remote.get(eid)
            if srcs:
                missing = next((x for x in srcs if x not in done), None)
                if missing is not None:
                    waiting[missing].append(ti)
                    break
            out.append((e, prev, srcs or ()))
            done.add(eid)
            woken = waiting.pop(eid, None)
            if woken:
                runnable.extend(woken)
            prev = eid
            i += 1
        pos[ti] = i

    while True:
        while runnable:
            run(runnable.pop())
        blocked = [ti for ti, seq in enumerate(seqs) if pos[ti] < len(seq)]
        if not blocked:
            return out
        ti = min(blocked, key=lambda t: (seqs[t][pos[t]].h.mono_ns, seqs[t][pos[t]].h.event_id))
        eid = seqs[ti][pos[ti]].h.event_id
        remote[eid] = [x for x in remote[eid] if x in done]  # break the cycle here
        runnable.append(ti)


def lamport_stamps(trace: UnifiedTrace, order: list[Visit] | None = None) -> dict[bytes, int]:
    """Lamport value per event id: program order per thread + all trace edges (``causal_order``). Each event
    starts from its own (agent-assigned) stamp and is raised only where a predecessor demands it — still a
    valid Lamport assignment, and most events keep their stamp (nothing to rewrite). ``order``: a
    ``causal_order(trace)`` already computed."""
    stamp: dict[bytes, int] = {}
    for e, prev, srcs in causal_order(trace) if order is None else order:
        v = e.h.stamp.lamport
        if prev is not None and stamp[prev] >= v:
            v = stamp[prev] + 1
        for x in srcs:
            if x in stamp and stamp[x] >= v:
                v = stamp[x] + 1
        stamp[e.h.event_id] = v
    return stamp


def causal_stamps(trace: UnifiedTrace, order: list[Visit] | None = None) -> dict[bytes, tuple[int, int]]:
    """The new causal stamp, (lamport, hlc), of every event whose stamp changes: Lamport (``lamport_stamps``)
    and HLC (``hlc.hlc_stamps``) in one pass over ``causal_order``, process events first, then every edge
    whose destination is a process event, given its destination's stamp. Events absent keep their stamp.
    Without edges between events (program order alone) each thread is one running maximum: no order built."""
    lam: dict[bytes, int] = {}
    clk: dict[bytes, int] = {}
    out: dict[bytes, tuple[int, int]] = {}
    ticks, shift = HLC_TICKS_PER_S, HLC_LOGICAL_BITS
    seqs, remote = _threads(trace) if order is None else ([], {})
    if order is None and not remote:
        need = {edge.dst for edge in trace.edges}
        lowest = -(1 << 64) - 1  # below any wire value: the first event of a thread keeps its own Lamport stamp
        for seq in seqs:
            pv, m = lowest, -1
            for e in seq:
                h = e.h
                st = h.stamp
                v = st.lamport
                if v <= pv:
                    v = pv + 1
                wall = h.wall_ns
                pt = ((wall if wall > 0 else 0) * ticks // 1_000_000_000) << shift
                hv = pt if pt > m else m + 1
                if v != st.lamport or hv != st.hlc:
                    out[h.event_id] = (v, hv)
                if need and h.event_id in need:
                    lam[h.event_id], clk[h.event_id] = v, hv
                pv, m = v, hv
    else:
        for e, prev, srcs in causal_order(trace) if order is None else order:
            h = e.h
            st = h.stamp
            v = st.lamport
            if prev is not None:
                m = clk[prev]
                if lam[prev] >= v:
                    v = lam[prev] + 1
            else:
                m = -1
            for x in srcs:  # sources are always stamped first (causal_order), cycles broken before
                if lam[x] >= v:
                    v = lam[x] + 1
                if clk[x] > m:
                    m = clk[x]
            wall = h.wall_ns
            pt = ((wall if wall > 0 else 0) * ticks // 1_000_000_000) << shift
            hv = pt if pt > m else m + 1
            eid = h.event_id
            lam[eid] = v
            clk[eid] = hv
            if v != st.lamport or hv != st.hlc:
                out[eid] = (v, hv)
    for edge in trace.edges:
        dst_hlc = clk.get(edge.dst)
        if dst_hlc is not None:
            new = (lam[edge.dst], dst_hlc)
            old = edge.h.stamp
            if new != (old.lamport, old.hlc):
                out[edge.h.event_id] = new
    return out


def with_stamp(e: Event, stamp: CausalStamp) -> Event:
    """``e`` with its header's causal stamp replaced: ``replace(e, h=replace(e.h, stamp=stamp))``, ~1.5x faster
    (one rewrite per event is the HLC's cost): a constructor call per event type, made once from its fields."""
    make = _REBUILD.get(type(e))
    if make is None:
        make = _REBUILD[type(e)] = _rebuilder(type(e))
    return make(e, stamp)


def _rebuilder(cls: type) -> Callable[[Event, CausalStamp], Event]:
    args = ", ".join(f"e.{f.name}" for f in fields(cls)[1:])
    src = ("def rebuild(e, stamp):\n    h = e.h\n"
           "    return C(H(h.event_id, h.host_id, h.pid, h.tid, h.mono_ns, h.wall_ns, h.duration_ns, stamp)"
           f"{', ' + args if args else ''})\n")
    scope: dict[str, Any] = {"C": cls, "H": EventHeader}
    exec(src, scope)  # source built from the dataclass's own field names
    rebuild: Callable[[Event, CausalStamp], Event] = scope["rebuild"]
    return rebuild


_REBUILD: dict[type, Callable[[Event, CausalStamp], Event]] = {}


def vector_stamps(trace: UnifiedTrace) -> dict[bytes, VectorClock]:
    """Exact happens-before: a vector clock per event over threads ("host/pid/tid"), merged along program
    order and every trace edge (``causal_order``). Size grows with threads, so it is computed on demand
    (analysis, tests, exports) rather than stored with every event; events carry Lamport and HLC stamps."""
    out: dict[bytes, VectorClock] = {}
    for e, prev, srcs in causal_order(trace):
        vc = out[prev] if prev is not None else VectorClock()
        for x in srcs:
            if x in out:
                vc = vc.merge(out[x])
        out[e.h.event_id] = vc.increment(f"{e.h.host_id}/{e.h.pid}/{e.h.tid}")
    return out


def add_derived_edges(trace: UnifiedTrace) -> list[tuple[SyscallSpan, SyscallSpan]]:
    """Add the PIPE and TCP edges to the trace (deduplicated by their derived ids). Returns cross-host pairs."""
    edges, pairs = derive_edges(trace)
    known = {e.h.event_id for e in trace.edges}
    trace.edges.extend(e for e in edges if e.h.event_id not in known)
    trace.edges.sort(key=lambda x: (x.src, x.dst, int(x.kind)))
    return pairs


def restamp_lamport(trace: UnifiedTrace) -> None:
    """Give every event its ``lamport_stamps`` value (events already consistent keep theirs)."""
    stamps = lamport_stamps(trace)
    for p in trace.processes.values():
        p.events = [with_stamp(e, CausalStamp(stamps[e.h.event_id], e.h.stamp.hlc))
                    if stamps.get(e.h.event_id, e.h.stamp.lamport) != e.h.stamp.lamport else e for e in p.events]


def apply_causality(trace: UnifiedTrace) -> list[tuple[SyscallSpan, SyscallSpan]]:
    """Add derived edges to the trace and restamp every event's Lamport value. Returns cross-host pairs.
    (The pipeline runs the two as separate steps, with clock sync between them.)"""
    pairs = add_derived_edges(trace)
    restamp_lamport(trace)
    return pairs
