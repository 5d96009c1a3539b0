"""causal_order: every event once, after its predecessors when there is no cycle; stamps follow it."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from sysweave.schemas.clocks import hlc_pack, ns_to_hlc_ticks
from sysweave.schemas.events import CausalStamp, EdgeKind, EventHeader, SyscallSpan, UnifiedTrace
from sysweave.streams.pipeline import CausalStamps, build_trace
from sysweave.streams.pipeline.assembly import assemble, derived_edge
from sysweave.streams.pipeline.causality import causal_order

threads = st.lists(st.tuples(st.integers(1, 3), st.integers(1, 2)), min_size=1, max_size=40)  # (pid, tid) per event


def make(tids: list[tuple[int, int]], edges: list[tuple[int, int]]) -> UnifiedTrace:
    evs = [SyscallSpan(EventHeader(i.to_bytes(16, "big"), "h", pid, pid * 10 + tid, 1000 * i, 10**18 + 1000 * i, 10,
                                   CausalStamp(0, 0)), 0, "read", 0) for i, (pid, tid) in enumerate(tids)]
    trace = assemble(evs, b"o" * 16)
    trace.edges = [derived_edge(evs[a], evs[b], EdgeKind.SDK) for a, b in edges if a < len(evs) and b < len(evs)]
    return trace


@given(threads, st.lists(st.tuples(st.integers(0, 39), st.integers(0, 39)), max_size=15), st.booleans())
@settings(max_examples=150, deadline=None)
def test_every_event_once_and_predecessors_first(tids: list[tuple[int, int]], pairs: list[tuple[int, int]],
                                                  acyclic: bool) -> None:
    edges = [(min(a, b), max(a, b)) for a, b in pairs if a != b] if acyclic else pairs
    trace = make(tids, edges)
    order = causal_order(trace)
    ids = [e.h.event_id for e, _, _ in order]
    assert sorted(ids) == sorted(e.h.event_id for p in trace.processes.values() for e in p.events)
    if acyclic:  # events are numbered in time order and edges go forward: a DAG with program order
        seen: set[bytes] = set()
        for e, prev, srcs in order:
            assert (prev is None or prev in seen) and all(s in seen for s in srcs)
            seen.add(e.h.event_id)
        CausalStamps()(trace, [])
        stamp = {e.h.event_id: e.h.stamp for p in trace.processes.values() for e in p.events}
        for edge in trace.edges:
            assert stamp[edge.src].lamport < stamp[edge.dst].lamport and stamp[edge.src].hlc < stamp[edge.dst].hlc
    else:  # cycles are broken, never dropped: every event still gets a real HLC
        CausalStamps()(trace, [])
        for p in trace.processes.values():
            for e in p.events:
                assert e.h.stamp.hlc >= hlc_pack(ns_to_hlc_ticks(e.h.wall_ns), 0)


def test_logical_part_carries_into_physical_on_overflow() -> None:
    """70,000 events in one HLC tick: c would pass 16 bits; l advances one tick instead (the clock's bump)."""
    n = 70_000
    evs = [SyscallSpan(EventHeader(i.to_bytes(16, "big"), "h", 1, 1, i, 10**18, 0, CausalStamp(0, 0)), 0, "read", 0)
           for i in range(n)]
    t = build_trace(evs, b"c" * 16).trace
    hlcs = [e.h.stamp.hlc for e in t.processes[("h", 1)].events]
    assert all(a < b for a, b in itertools.pairwise(hlcs))
    base = hlc_pack(ns_to_hlc_ticks(10**18), 0)
    assert hlcs[-1] == base + n - 1 and hlcs[-1] >> 16 == (base >> 16) + 1
