"""The stream worker's memory is bounded by configuration (TraceBuffer.max_events), never by the input."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from sysweave.schemas.events import CausalStamp, EventHeader, SyscallSpan, make_event_id
from sysweave.streams.buffer import TraceBuffer


def _span(producer: int, seq: int, pid: int) -> SyscallSpan:
    h = EventHeader(make_event_id(producer, seq), "h", pid, pid, seq, seq, 1, CausalStamp(seq, 0))
    return SyscallSpan(h, 0, "read", 1)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 20), st.integers(1, 50)), min_size=1, max_size=60), st.integers(10, 400))
def test_held_events_never_exceed_the_limit_after_a_round(batches: list[tuple[int, int]], limit: int) -> None:
    buf = TraceBuffer(grace_s=1.0, inactivity_s=100.0, max_events=limit)
    seq = 0
    added: set[bytes] = set()
    handed_out: set[bytes] = set()
    for now, (trace, n) in enumerate(batches):
        events = []
        for _ in range(n):
            seq += 1
            events.append(_span(trace, seq, 100 + trace))
        added.update(e.h.event_id for e in events)
        buf.add(f"h/{trace}".encode(), events, float(now))
        for t in buf.ready(float(now)):
            handed_out.update(t.events)
        buf.forget_closed()
        assert buf.held_events() <= limit
        # every event is still open or was handed out to be emitted: the limit closes early, never drops
        assert added <= handed_out | {i for t in buf.open.values() for i in t.events}


def test_the_least_recently_active_trace_closes_early_and_is_counted() -> None:
    buf = TraceBuffer(grace_s=1.0, inactivity_s=100.0, max_events=100)
    buf.add(b"h/1", [_span(1, i, 1) for i in range(1, 61)], 0.0)
    buf.add(b"h/2", [_span(2, i, 2) for i in range(1, 61)], 5.0)
    out = buf.ready(6.0)
    assert [t.key for t in out] == [b"h/1"] and out[0].forced and buf.forced_closes == 1
    buf.forget_closed()
    assert buf.held_events() == 60 and buf.forgotten_closed == 1
