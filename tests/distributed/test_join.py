"""The cross-host join (pure, ``sysweave.streams.join``): per-host trees that talk over TCP become one trace,
bounded by each connection's window — unrelated clients of one server stay apart; a job is one trace."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from sysweave.schemas.events import (
    CausalStamp,
    Event,
    EventHeader,
    HostInfo,
    ProcessEvent,
    ProcessEventType,
    SyscallSpan,
    make_event_id,
)
from sysweave.schemas.topics import ControlDecision, HostCounts, MessageError, Sighting, trace_key
from sysweave.streams.endpoints import EndpointTable, split_addr
from sysweave.streams.join import join_trees, plan_tree
from sysweave.streams.pipeline import build_trace

_seq = itertools.count(1)


class Proc:
    """One traced process on a host, writing its events with a clock (``t``, ns) that the test advances."""

    def __init__(self, host: str, pid: int, argv: str, t: int = 0) -> None:
        self.host, self.pid, self.t = host, pid, t
        self.events: list[Event] = []
        self.proc(ProcessEventType.EXEC, argv=tuple(argv.split()))

    def _h(self, dur: int = 1000) -> EventHeader:
        start = self.t + 1000
        self.t = start + dur
        return EventHeader(make_event_id(hash(self.host) & 0xFFFF, next(_seq)), self.host, self.pid, self.pid,
                           start, start, dur, CausalStamp(0, 0))

    def proc(self, kind: ProcessEventType, **kw: object) -> None:
        self.events.append(ProcessEvent(self._h(0), kind, **kw))  # type: ignore[arg-type]

    def call(self, name: str, ret: int, payload: bytes | None = None, dur: int = 1000, **args: object) -> None:
        self.events.append(SyscallSpan(self._h(dur), 0, name, ret, dict(args), payload,  # type: ignore[arg-type]
                                       len(payload) if payload else max(ret, 0)))

    def key(self) -> bytes:
        return trace_key(self.host, self.pid)


def host(name: str, ip: str) -> HostInfo:
    return HostInfo(EventHeader(make_event_id(7, next(_seq)), name, 0, 0, 0, 0), name, addresses=(ip,))


def connected_at(c: Proc, nth: int = 0) -> int:
    return [e.h.wall_ns for e in c.events if isinstance(e, SyscallSpan) and e.name == "connect"][nth]


def serve(srv: Proc, port: int, peers: list[tuple[str, int, list[bytes], int]], exit_after: bool = True) -> None:
    """A sequential server: one blocking accept per peer (ip, port, requests, its connect time on the server's
    clock) returning just after that connect, a reply per request, close."""
    srv.call("socket", 3)
    srv.call("bind", 0, fd=3, addr=f"0.0.0.0:{port}")
    srv.call("listen", 0, fd=3)
    for ip, cport, reqs, at in peers:
        srv.call("accept4", 4, fd=3, addr=f"{ip}:{cport}", dur=max(at + 50_000 - (srv.t + 1000), 1000))
        for r in reqs:
            srv.call("recvfrom", len(r), payload=r, fd=4)
            srv.call("write", 5, payload=b"done\n", fd=4)
        srv.call("close", 0, fd=4)
    if exit_after:
        srv.call("close", 0, fd=3)
        srv.proc(ProcessEventType.EXIT, exit_code=0)


def client(c: Proc, server: str, reqs: list[bytes], fd: int = 3, close: bool = True) -> None:
    c.call("socket", fd)
    c.call("connect", 0, fd=fd, addr=server)
    for r in reqs:
        c.call("sendto", len(r), payload=r, fd=fd)
        c.call("read", 5, payload=b"done\n", fd=fd)
    if close:
        c.call("close", 0, fd=fd)


def trace_of(traces: dict[bytes, list[Event]], event_id: bytes) -> bytes:
    return next(k for k, evs in traces.items() if any(e.h.event_id == event_id for e in evs))


@given(n=st.integers(2, 4), same_bytes=st.booleans(), one_host=st.booleans(), gap=st.integers(0, 5_000_000),
       rounds=st.integers(1, 3))
@settings(max_examples=60, deadline=None)
def test_unrelated_clients_of_one_server_stay_apart(n: int, same_bytes: bool, one_host: bool, gap: int,
                                                   rounds: int) -> None:
    """A long-lived server on S serves n clients one after the other (on n hosts, or all on one host sending the
    same bytes, so only the times tell them apart): each client's trace gets that client's connection window of
    the server (its blocking accept returns just after that client's connect), no client trace holds another
    client, the server keeps the rest."""
    name = [("c0" if one_host else f"c{i}") for i in range(n)]
    ip = [("10.0.0.1" if one_host else f"10.0.{i}.1") for i in range(n)]
    hosts = [host("S", "10.0.0.100")] + [host(h, a) for h, a in sorted(set(zip(name, ip)))]
    clients = [Proc(name[i], 100 + i, f"client {i}", t=i * (gap + 10**6)) for i in range(n)]
    reqs = [[b"GET /x\n" if same_bytes else b"GET /%d\n" % i] * rounds for i in range(n)]
    for c, r in zip(clients, reqs):
        client(c, "10.0.0.100:8080", r)
    srv = Proc("S", 50, "server")
    serve(srv, 8080, [(ip[i], 40000 + i, reqs[i], connected_at(clients[i])) for i in range(n)])
    trees = {p.key(): p.events + [h for h in hosts if h.h.host_id == p.host] for p in [*clients, srv]}
    traces = join_trees(trees)
    accepts = [e for e in srv.events if isinstance(e, SyscallSpan) and e.name == "accept4"]
    for i, c in enumerate(clients):
        k = trace_of(traces, c.events[0].h.event_id)
        assert k == c.key()  # the client's own trace
        assert trace_of(traces, accepts[i].h.event_id) == k  # ... holding its window of the server
        procs = {(e.h.host_id, e.h.pid) for e in traces[k] if e.h.pid}  # (HostInfo: pid 0)
        assert procs == {(c.host, c.pid), ("S", srv.pid)}, procs  # and no other client
    assert trace_of(traces, srv.events[0].h.event_id) == srv.key()  # the server's exec stays its own
    assert len({trace_of(traces, c.events[0].h.event_id) for c in clients}) == n


@given(rounds=st.integers(1, 5), offset_b=st.integers(-10**7, 10**7), middle=st.booleans())
@settings(max_examples=40, deadline=None)
def test_a_job_is_one_trace(rounds: int, offset_b: int, middle: bool) -> None:
    """A coordinator on A talks to workers on B and C (or, ``middle``, to B which calls C): one trace with
    every process and TCP edges both ways on every link, whatever the clock offsets."""
    hosts = [host("A", "10.1.0.1"), host("B", "10.1.0.2"), host("C", "10.1.0.3")]
    coord = Proc("A", 10, "coordinator")
    b = Proc("B", 20, "worker b", t=offset_b)
    cw = Proc("C", 30, "worker c")
    jobs = [b"work %d\n" % i for i in range(rounds)]
    client(coord, "10.1.0.2:7000", jobs, fd=3, close=False)
    if middle:
        b.call("socket", 3)
        b.call("bind", 0, fd=3, addr="0.0.0.0:7000")
        b.call("listen", 0, fd=3)
        b.call("accept4", 4, fd=3, addr="10.1.0.1:50000")
        client(b, "10.1.0.3:7001", jobs, fd=5)
        for j in jobs:
            b.call("recvfrom", len(j), payload=j, fd=4)
            b.call("write", 5, payload=b"done\n", fd=4)
        b.call("close", 0, fd=4)
        b.proc(ProcessEventType.EXIT, exit_code=0)
        serve(cw, 7001, [("10.1.0.2", 50001, jobs, connected_at(b) - offset_b)])
    else:
        client(coord, "10.1.0.3:7000", jobs, fd=4, close=False)
        serve(b, 7000, [("10.1.0.1", 50000, jobs, connected_at(coord) + offset_b)])
        serve(cw, 7000, [("10.1.0.1", 50001, jobs, connected_at(coord, 1))])
    coord.proc(ProcessEventType.EXIT, exit_code=0)
    trees = {p.key(): p.events + [h for h in hosts if h.h.host_id == p.host] for p in (coord, b, cw)}
    traces = join_trees(trees)
    assert list(traces) == [coord.key()]
    done = build_trace(traces[coord.key()], b"j" * 16).trace
    assert {h for h, _ in done.processes} == {"A", "B", "C"}
    by_id = {e.h.event_id: e for p in done.processes.values() for e in p.events}
    cross = {(by_id[e.src].h.host_id, by_id[e.dst].h.host_id) for e in done.edges
             if e.kind.name == "TCP" and e.src in by_id and e.dst in by_id}
    links = {("A", "B"), ("B", "A"), ("B", "C"), ("C", "B")} if middle else {("A", "B"), ("B", "A"), ("A", "C"), ("C", "A")}
    assert links <= cross


def test_a_server_not_yet_matched_waits_then_stands_alone() -> None:
    srv = Proc("S", 50, "server")
    serve(srv, 9000, [("10.9.9.9", 1234, [b"x\n"], 0)])
    table = EndpointTable()
    assert plan_tree(srv.key(), srv.events, table, 0.0, 5.0).wait  # its client may still be published
    plan = plan_tree(srv.key(), srv.events, table, 6.0, 5.0)
    assert not plan.wait and list(plan.parts) == [srv.key()]


def test_messages_round_trip_and_reject_garbage() -> None:
    s = Sighting("server", "h", b"h/1", b"e" * 16, 80, client_ip="10.0.0.1", client_port=5, wall_ns=7,
                 first=b"GET", addresses=("10.0.0.2",))
    assert Sighting.decode(s.encode()) == s
    d = ControlDecision("h", 4096, 0.25)
    assert ControlDecision.decode(d.encode()) == d and b'"class"' not in d.encode()
    c = HostCounts("h", "w1", 10, 1.0, (0, 3))
    assert HostCounts.decode(c.encode()) == c
    for bad, dec in ((b"\x00", Sighting.decode), (b"[]", ControlDecision.decode), (b'{"host_id": 1}', HostCounts.decode),
                     (b'{"host_id": "h", "shipped": -1, "interval_s": 1}', HostCounts.decode)):
        try:
            dec(bad)
        except MessageError:
            continue
        raise AssertionError(bad)
    assert split_addr("[::1]:80") == ("::1", 80) and split_addr("10.0.0.1:7") == ("10.0.0.1", 7)


def test_a_long_lived_server_lends_complete_windows_while_it_runs() -> None:
    """A server still running (never idle, never exiting) with three connections: the two closed windows go to
    their clients now; the open one waits; later, the rest is planned without joining the server whole."""
    from sysweave.streams.endpoints import SightingScanner
    from sysweave.streams.join import ripe_windows

    hosts = [host("S", "10.0.0.100"), host("c", "10.0.0.1")]
    clients = [Proc("c", 100 + i, f"client {i}", t=i * 10**7) for i in range(3)]
    for i, c in enumerate(clients):
        client(c, "10.0.0.100:8080", [b"GET /\n"], close=i < 2)
    srv = Proc("S", 50, "server")
    serve(srv, 8080, [("10.0.0.1", 40000 + i, [b"GET /\n"], connected_at(clients[i])) for i in range(2)],
          exit_after=False)
    srv.call("accept4", 4, fd=3, addr="10.0.0.1:40002", dur=max(connected_at(clients[2]) + 50_000 - srv.t, 1000))
    srv.call("recvfrom", 6, payload=b"GET /\n", fd=4)
    table = EndpointTable()
    scanner = SightingScanner()
    for p in (*clients, srv):
        for s in scanner.scan(p.key(), p.events + hosts):
            table.add(s)
    lent = ripe_windows(srv.key(), srv.events, table)
    assert set(lent) == {clients[0].key(), clients[1].key()}
    accepts = [e for e in srv.events if isinstance(e, SyscallSpan) and e.name == "accept4"]
    for i in (0, 1):
        assert accepts[i] in lent[clients[i].key()] and accepts[2] not in lent[clients[i].key()]
    gone = {e.h.event_id for part in lent.values() for e in part}
    rest = [e for e in srv.events if e.h.event_id not in gone]
    plan = plan_tree(srv.key(), rest, table, 99.0, 1.0, whole=False)
    assert set(plan.parts) == {srv.key(), clients[2].key()}  # its exec stays with the server
    assert ripe_windows(clients[0].key(), clients[0].events, table) == {}  # a client has no windows
