"""Clock laws: Lamport's implication (and a counter-example to its converse), vector-clock order, HLC rules."""

from __future__ import annotations

import itertools
import threading

from hypothesis import given, settings
from hypothesis import strategies as st

from sysweave.schemas.clocks import (
    HLC_LOGICAL_MAX,
    ClockSkewError,
    HybridLogicalClock,
    LamportClock,
    Order,
    VectorClock,
    hlc_pack,
    hlc_to_wall_ns,
    hlc_unpack,
    ns_to_hlc_ticks,
)

# A run of N processes is a list of steps: ("local", p) or ("send", p, q) (a message p -> q, delivered at once).
steps = st.lists(
    st.one_of(
        st.tuples(st.just("local"), st.integers(0, 3)),
        st.tuples(st.just("send"), st.integers(0, 3), st.integers(0, 3)).filter(lambda s: s[1] != s[2]),
    ),
    min_size=1, max_size=30,
)


def simulate(run: list[tuple]) -> tuple[list[tuple[int, int, VectorClock]], set[tuple[int, int]]]:
    """Execute a run; return events as (process, lamport, vector) and the happens-before relation
    computed independently (transitive closure of program order and message edges)."""
    lam = [LamportClock() for _ in range(4)]
    vec = [VectorClock() for _ in range(4)]
    events: list[tuple[int, int, VectorClock]] = []
    last = [-1] * 4
    edges: set[tuple[int, int]] = set()

    def record(p: int, stamp: int) -> int:
        i = len(events)
        events.append((p, stamp, vec[p]))
        if last[p] >= 0:
            edges.add((last[p], i))
        last[p] = i
        return i

    for s in run:
        p = s[1]
        vec[p] = vec[p].increment(str(p))
        i = record(p, lam[p].tick())
        if s[0] == "send":
            q = s[2]
            vec[q] = vec[q].merge(vec[p]).increment(str(q))
            j = record(q, lam[q].merge(lam[p].value))
            edges.add((i, j))
    hb = set(edges)
    changed = True
    while changed:  # transitive closure (small graphs)
        new = {(a, d) for (a, b), (c, d) in itertools.product(hb, hb) if b == c} - hb
        hb |= new
        changed = bool(new)
    return events, hb


@given(steps)
@settings(max_examples=300)
def test_lamport_respects_happens_before(run: list[tuple]) -> None:
    events, hb = simulate(run)
    for a, b in hb:
        assert events[a][1] < events[b][1]


def test_lamport_converse_is_false() -> None:
    """Two processes that never communicate: C(a) < C(b) although a and b are concurrent."""
    p, q = LamportClock(), LamportClock()
    a = p.tick()
    q.tick()
    b = q.tick()
    assert a < b
    va, vb = VectorClock().increment("p"), VectorClock().increment("q").increment("q")
    assert va.compare(vb) is Order.CONCURRENT  # ... and the vector clock knows it


def test_lamport_merge_rule_and_threads() -> None:
    c = LamportClock(5)
    assert c.merge(3) == 6 and c.merge(10) == 11 and c.tick() == 12
    c = LamportClock()
    ts = [threading.Thread(target=lambda: [c.tick() for _ in range(10_000)]) for _ in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert c.value == 40_000


@given(steps)
@settings(max_examples=300)
def test_vector_clocks_characterise_happens_before(run: list[tuple]) -> None:
    events, hb = simulate(run)
    for a, b in itertools.permutations(range(len(events)), 2):
        order = events[a][2].compare(events[b][2])
        if (a, b) in hb:
            assert order is Order.BEFORE
        elif (b, a) in hb:
            assert order is Order.AFTER
        else:
            assert order is Order.CONCURRENT  # concurrency is detected, never mistaken for order


vclocks = st.dictionaries(st.sampled_from("abcd"), st.integers(0, 4)).map(VectorClock)


@given(vclocks, vclocks, vclocks)
def test_vector_order_laws(a: VectorClock, b: VectorClock, c: VectorClock) -> None:
    assert not a.happened_before(a)  # irreflexive
    if a.happened_before(b):
        assert not b.happened_before(a)  # antisymmetric
        if b.happened_before(c):
            assert a.happened_before(c)  # transitive
    assert (a.compare(b) is Order.EQUAL) == (a == b)
    m = a.merge(b)
    assert a.compare(m) in (Order.BEFORE, Order.EQUAL) and b.compare(m) in (Order.BEFORE, Order.EQUAL)


def test_hlc_packing_sorts_like_tuples() -> None:
    assert hlc_unpack(hlc_pack(123456, 7)) == (123456, 7)
    assert hlc_pack(5, HLC_LOGICAL_MAX) < hlc_pack(6, 0)
    assert ns_to_hlc_ticks(1_000_000_000) == 65536
    assert abs(hlc_to_wall_ns(hlc_pack(ns_to_hlc_ticks(1_790_000_000_123_456_789), 3)) - 1_790_000_000_123_456_789) < 16_000


def test_hlc_worked_example_from_the_docstring() -> None:
    pt = [100 * 1_000_000_000 // 65536 + 1]  # physical time that maps to tick 100
    clock = HybridLogicalClock(lambda: pt[0])
    clock.now()
    clock.now()
    clock.now()  # l=100, c=2
    assert hlc_unpack(clock.value) == (100, 2)
    assert hlc_unpack(clock.update(hlc_pack(103, 5))) == (103, 6)
    assert hlc_unpack(clock.now()) == (103, 7)  # physical time behind l: logical part grows


@given(st.lists(st.tuples(st.integers(0, 50_000), st.booleans(), st.integers(-20_000, 20_000)), min_size=1, max_size=60))
def test_hlc_monotonic_and_bounded_drift(script: list[tuple[int, bool, int]]) -> None:
    """Two hosts whose physical clocks differ by up to 20 us exchange messages; every value strictly grows,
    and l never runs ahead of the largest physical time seen by more than a tick."""
    now = [1_790_000_000_000_000_000]
    skew_b = [0]
    a = HybridLogicalClock(lambda: now[0])
    b = HybridLogicalClock(lambda: now[0] + skew_b[0])
    last_a = last_b = -1
    max_pt = 0
    for advance, a_sends, skew in script:
        now[0] += advance
        skew_b[0] = skew
        max_pt = max(max_pt, now[0], now[0] + skew)
        sender, receiver = (a, b) if a_sends else (b, a)
        m = sender.now()
        r = receiver.update(m)
        assert r > m  # receive after send
        va, vb = a.value, b.value
        assert va > last_a or (va == last_a and sender is b)
        assert vb > last_b or (vb == last_b and sender is a)
        last_a, last_b = va, vb
        for v in (va, vb):
            assert hlc_unpack(v)[0] <= ns_to_hlc_ticks(max_pt) + 1


def test_hlc_rejects_excessive_skew() -> None:
    clock = HybridLogicalClock(lambda: 1_790_000_000_000_000_000, max_offset_ns=500_000_000)
    far = hlc_pack(ns_to_hlc_ticks(1_790_000_010_000_000_000), 0)
    try:
        clock.update(far)
    except ClockSkewError as exc:
        assert "ahead of local time" in str(exc)
    else:
        raise AssertionError("10 s of skew accepted")


def test_hlc_logical_overflow_carries_into_physical() -> None:
    clock = HybridLogicalClock(lambda: 0)
    values = [clock.now() for _ in range(HLC_LOGICAL_MAX + 3)]
    assert values == sorted(set(values))
