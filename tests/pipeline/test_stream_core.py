"""Pure stream functions: the sampling controller, causal edges and stamps, clock offsets."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from sysweave.schemas.events import (
    CausalStamp,
    EdgeKind,
    EventHeader,
    HostInfo,
    ProcessEvent,
    ProcessEventType,
    SyscallSpan,
    make_event_id,
)
from sysweave.streams.pipeline.assembly import assemble
from sysweave.streams.pipeline.causality import apply_causality, lamport_stamps
from sysweave.streams.pipeline.clocksync import choose_reference, correct_trace, estimate_offsets
from sysweave.streams.sampling import ControllerConfig, HostSampling, damped_step, threshold_interpolated

cfg = ControllerConfig(target_spans_per_s=1000)


def _step(p: float, observed: int, gain: float = 1.0, last_error: float = 0.0) -> tuple[float, float, float]:
    new, gain, error = damped_step(HostSampling("h", p), observed, 1.0, [], cfg, gain, last_error)
    return new.fraction, gain, error


@given(st.floats(1e-6, 1.0), st.integers(0, 10**7), st.floats(0.125, 1.0), st.floats(-5.0, 5.0))
def test_controller_bounds(p: float, observed: int, gain: float, last_error: float) -> None:
    q, g, _ = _step(p, observed, gain, last_error)
    assert cfg.min_fraction <= q <= 1.0
    assert q <= p * 1.5 + 1e-12  # increases capped at +50 %
    assert 0.125 <= g <= 1.0
    if observed > 1100:
        assert q < p or q == cfg.min_fraction  # decreases immediately when over target
    if 900 <= observed <= 1100:
        assert q == p  # tolerance band


def test_controller_worked_example() -> None:
    q, gain, error = _step(0.2, 4000)
    assert abs(q - 0.05) < 1e-12  # the first step is the plain ratio target/observed
    q, gain, _ = _step(q, 200, gain, error)
    assert gain == 0.5 and abs(q - 0.075) < 1e-12  # sign change: gain halves; the increase is capped at +50 %


def test_controller_settles_where_the_plain_step_oscillates() -> None:
    """A rate that reacts to p more than proportionally (observed = 1000 * (p / 0.1) ** 2): the plain step
    p * target / observed overshoots on either side; the damped step ends inside the tolerance band."""
    p, gain, error = 0.5, 1.0, 0.0
    for _ in range(40):
        observed = int(1000 * (p / 0.1) ** 2)
        p, gain, error = _step(p, observed, gain, error)
    assert 900 <= 1000 * (p / 0.1) ** 2 <= 1100


def test_threshold_interpolated() -> None:
    hist = [0] * 10 + [900, 90, 10]
    assert threshold_interpolated(hist, 0.1, 0) == 2048
    assert threshold_interpolated(hist, 0.1, 10_000) == 10_000
    assert threshold_interpolated(hist, 0.055, 0) == 3072
    assert threshold_interpolated(hist, 0.01, 0) == 4096
    assert threshold_interpolated(hist, 1.0, 500) == threshold_interpolated([], 0.5, 500) == 500


@given(st.lists(st.integers(0, 50), min_size=40, max_size=40), st.floats(0.0, 1.0), st.floats(0.0, 1.0))
def test_threshold_monotonic_in_fraction(hist: list[int], p: float, q: float) -> None:
    lo, hi = sorted((p, q))
    assert threshold_interpolated(hist, hi, 0) <= threshold_interpolated(hist, lo, 0)


# --- a two-host exchange: A (client) sends requests to B (server), B replies ---------------------------
_seq = itertools.count(1)


def ev(host: str, pid: int, t_ns: int, name: str, ret: int, dur: int = 1000, payload: bytes | None = None,
       **args: object) -> SyscallSpan:
    n = next(_seq)
    h = EventHeader(make_event_id(hash(host) & 0xFFFF, n), host, pid, pid, t_ns, t_ns, dur, CausalStamp(0, 0))
    return SyscallSpan(h, 0, name, ret, dict(args), payload, max(ret, 0))  # type: ignore[arg-type]


def host(name: str, ip: str) -> HostInfo:
    return HostInfo(EventHeader(make_event_id(7, next(_seq)), name, 0, 0, 0, 0), name, addresses=(ip,))


def exchange(offset_b: int, delay: int, rounds: int) -> list:
    """True times t; B's clock reads t + offset_b. Each message takes ``delay`` ns."""
    evs: list = [host("A", "10.0.0.1"), host("B", "10.0.0.2"),
                 ev("A", 1, 0, "connect", 0, fd=3, addr="10.0.0.2:7000"),
                 ev("B", 2, 10 + offset_b, "accept4", 4, fd=3, addr="10.0.0.1:40000")]
    t = 1000
    for i in range(rounds):
        msg, reply = b"job %03d" % i, b"done %03d" % i
        evs.append(ev("A", 1, t, "sendto", len(msg), payload=msg, fd=3))
        evs.append(ev("B", 2, t + offset_b, "recvfrom", len(msg), dur=delay, payload=msg, fd=4))
        t += delay + 5000
        evs.append(ev("B", 2, t + offset_b, "write", len(reply), payload=reply, fd=4))
        evs.append(ev("A", 1, t, "read", len(reply), dur=delay + 100, payload=reply, fd=3))
        t += delay + 5000
    return evs


def test_tcp_edges_and_offset_within_bound() -> None:
    offset = 3_000_000  # B runs 3 ms ahead
    trace = assemble(exchange(offset, 20_000, 5), b"t" * 16)
    pairs = apply_causality(trace)
    tcp = [e for e in trace.edges if e.kind is EdgeKind.TCP]
    assert len(tcp) == 10 and len(pairs) == 10
    offsets = estimate_offsets(pairs, "A")
    est = offsets["B"]
    assert abs(est.estimate - offset) <= est.bound and est.bound <= 20_000 + 100
    correct_trace(trace, offsets)
    assert trace.clocks and trace.clocks[0].host == "B"
    for s, r in pairs:  # after correction no receive ends before its send starts
        s_ev = next(e for p in trace.processes.values() for e in p.events if e.h.event_id == s.h.event_id)
        r_ev = next(e for p in trace.processes.values() for e in p.events if e.h.event_id == r.h.event_id)
        assert r_ev.h.wall_ns + r_ev.h.duration_ns >= s_ev.h.wall_ns


@given(st.integers(-10**9, 10**9), st.integers(1, 10**6), st.integers(1, 6))
@settings(max_examples=60)
def test_offset_property(offset: int, delay: int, rounds: int) -> None:
    trace = assemble(exchange(offset, delay, rounds), b"t" * 16)
    est = estimate_offsets(apply_causality(trace), "A")["B"]
    assert est.lo <= offset <= est.hi


def test_pipe_edge_and_lamport_consistency() -> None:
    evs = [ev("A", 1, 0, "pipe2", 0, pipefd=(3, 4)),
           ProcessEvent(EventHeader(make_event_id(9, next(_seq)), "A", 1, 1, 10, 10), ProcessEventType.FORK,
                        parent_pid=1, child_pid=2),
           ev("A", 1, 100, "write", 4, payload=b"ping", fd=4),
           ev("A", 2, 50, "read", 4, dur=100, payload=b"ping", fd=3)]  # blocking read started first
    trace = assemble(evs, b"p" * 16)
    apply_causality(trace)
    pipe = [e for e in trace.edges if e.kind is EdgeKind.PIPE]
    assert len(pipe) == 1
    stamps = lamport_stamps(trace)
    for e in trace.edges:
        assert stamps[e.src] < stamps[e.dst]
    assert choose_reference(trace) == "A"


def test_vector_stamps_follow_edges_and_detect_concurrency() -> None:
    from sysweave.schemas.clocks import Order
    from sysweave.streams.pipeline.causality import vector_stamps

    trace = assemble(exchange(1_000_000, 20_000, 3), b"v" * 16)
    apply_causality(trace)
    vcs = vector_stamps(trace)
    for e in trace.edges:  # every edge is a happens-before in the vector order
        assert vcs[e.src].happened_before(vcs[e.dst])
    a_first = min((e for p in trace.processes.values() for e in p.events if e.h.host_id == "A"), key=lambda e: e.h.mono_ns)
    b_first = min((e for p in trace.processes.values() for e in p.events if e.h.host_id == "B"), key=lambda e: e.h.mono_ns)
    assert vcs[a_first.h.event_id].compare(vcs[b_first.h.event_id]) is Order.CONCURRENT  # connect vs accept: no edge
    stamps = lamport_stamps(trace)
    for x, y in itertools.combinations(list(vcs)[:40], 2):  # Lamport is consistent with the exact order
        if vcs[x].happened_before(vcs[y]):
            assert stamps[x] < stamps[y]
