"""The stream worker's fast path (deferred stamps encoded straight to the wire, compiled codec) against the
plain pipeline: the same bytes, the same trace, and the pipeline's own property tests run again through it.

Fast path = ``build_trace(..., defer_stamps=True)`` -> ``wire.encode_finished`` (what the worker emits) ->
``codec.decode_batch`` -> ``build_trace(..., steps=FINISHED)`` (what the validator service rebuilds)."""

from __future__ import annotations

import random
from collections.abc import Iterable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sysweave.schemas import codec
from sysweave.schemas.events import (
    EVENT_TYPES,
    CausalStamp,
    Event,
    EventHeader,
    ProcessEvent,
    ProcessEventType,
    SyscallSpan,
    make_event_id,
)
from sysweave.streams.buffer import TraceBuffer, finish
from sysweave.streams.pipeline import FINISHED, FinishedTrace, build_trace, trace_events
from sysweave.streams.pipeline.causality import with_stamp
from sysweave.streams.pipeline.fdresources import Op, ResourceKind
from sysweave.streams.pipeline.fdtrack import track, track_streams
from sysweave.streams.pipeline.wire import encode_finished
from sysweave.streams.worker import encode_trace

from . import test_causal_order, test_one_pipeline, test_stream_core
from .recorded import recorded_events
from .test_assembly import build_tree

CREATED = 1_795_000_000_123_456_789


def plain_bytes(done: FinishedTrace) -> bytes:
    t = done.trace
    return codec.encode_batch(codec.Batch(int.from_bytes(t.trace_id[:8], "big"), t.late_events, CREATED,
                                          tuple(trace_events(t))))


def fast_build(events: Iterable[Event], trace_id: bytes, label: str = "", **kw: Any) -> FinishedTrace:
    """build_trace through the worker's fast path and back (the validator service's rebuild)."""
    done = build_trace(events, trace_id, label, defer_stamps=True, **kw)
    batch = codec.decode_batch(encode_finished(done, CREATED))
    again = build_trace(batch.events, trace_id, label, late_events=batch.sequence, steps=FINISHED)
    again.warnings = done.warnings
    return again


def bench_like(n: int, threads: int = 1) -> list[Event]:
    """One process as bench/stream_throughput.py sends it (exec, n reads, exit), optionally several threads."""
    h = lambda i, t: EventHeader(make_event_id(9, i + 1), "bench", 7, 7 + t, i, 10**18 + 37 * i, 500,  # noqa: E731
                                 CausalStamp(i + 1, 0))
    evs: list[Event] = [ProcessEvent(h(0, 0), ProcessEventType.EXEC, argv=("bench",))]
    evs += [SyscallSpan(h(i, i % threads), 0, "read", 8, {"fd": 3}) for i in range(1, n - 1)]
    evs.append(ProcessEvent(h(n - 1, 0), ProcessEventType.EXIT, exit_code=0))
    return evs


CASES = {
    "two-hosts": lambda: recorded_events().events,
    "two-hosts-skewed": lambda: recorded_events(offset_b_ns=-3_000_000, rounds=3).events,
    "no-clock-sync": lambda: recorded_events(rounds=0).events,
    "process-tree": lambda: build_tree(4, 3),
    "bench-one-thread": lambda: bench_like(3000),
    "bench-three-threads": lambda: bench_like(3000, 3),
}


@pytest.mark.parametrize("case", list(CASES))
def test_same_bytes_and_same_trace(case: str) -> None:
    events = list(CASES[case]())
    random.Random(3).shuffle(events)
    slow = build_trace(events, b"s" * 16, "lbl", late_events=2)
    fast = build_trace(events, b"s" * 16, "lbl", late_events=2, defer_stamps=True)
    assert encode_finished(fast, CREATED) == plain_bytes(slow)
    assert fast.applied() == slow.trace and fast.pending == {} and fast.warnings == slow.warnings
    assert fast_build(events, b"s" * 16, "lbl", late_events=2).trace == slow.trace


def test_worker_fast_path_emits_what_the_plain_path_emits() -> None:
    """``finish(..., defer_stamps=True)`` + ``encode_finished`` (the worker) == ``finish`` + ``encode_trace``."""
    rec = recorded_events()
    buf = TraceBuffer(grace_s=1.0, inactivity_s=5.0)
    for n, (_h, evs) in enumerate(rec.by_host.items()):
        buf.add(b"job-1", evs, now_s=n * 0.01)
    (t,) = buf.ready(now_s=100.0)
    plain = codec.decode_batch(encode_trace(finish(t).trace))
    fast = codec.decode_batch(encode_finished(finish(t, defer_stamps=True)))
    assert (fast.producer_id, fast.sequence, fast.events) == (plain.producer_id, plain.sequence, plain.events)


def test_deferred_stamps_must_be_last() -> None:
    from sysweave.streams.pipeline import CausalEdges, CausalStamps

    with pytest.raises(ValueError):
        build_trace(bench_like(5), b"x" * 16, steps=(CausalStamps(), CausalEdges()), defer_stamps=True)


@pytest.mark.parametrize("cls", list(EVENT_TYPES.values()), ids=lambda c: c.__name__)
@settings(max_examples=60)
@given(data=st.data())
def test_stamped_encoding_is_the_rebuilt_events_encoding(cls: type, data: st.DataObject) -> None:
    from tests.contract.strategies import event_strategy

    event = data.draw(event_strategy(cls))
    lamport, hlc = data.draw(st.integers(0, 2**64 - 1)), data.draw(st.integers(0, 2**64 - 1))
    assert codec.event_to_wire_stamped(event, lamport, hlc) == codec.event_to_wire(
        with_stamp(event, CausalStamp(lamport, hlc)))


@pytest.mark.parametrize("case", ["two-hosts", "process-tree", "bench-three-threads"])
def test_track_streams_is_track_filtered(case: str) -> None:
    events = list(CASES[case]())
    streaming = (ResourceKind.PIPE, ResourceKind.SOCKETPAIR, ResourceKind.CONN)

    def key(a: Any) -> tuple[Any, ...]:
        return a.event.h.event_id, a.op, a.resource, a.fd, a.nbytes, a.source

    def wanted(a: Any) -> bool:
        if a.op in (Op.CONNECT, Op.ACCEPT):
            return True
        if a.op not in (Op.READ, Op.WRITE) or a.nbytes <= 0:
            return False
        return (a.resource is not None and a.resource.kind in streaming) or a.source is not None

    assert [key(a) for a in track_streams(events) if wanted(a)] == [key(a) for a in track(events) if wanted(a)]


# --- the pipeline's property tests, unchanged, run again through the fast path --------------------------

@pytest.fixture
def fast(monkeypatch: pytest.MonkeyPatch) -> None:
    for mod in (test_one_pipeline, test_causal_order):
        monkeypatch.setattr(mod, "build_trace", fast_build)


def test_properties_through_the_fast_path(fast: None) -> None:
    test_one_pipeline.test_the_pipeline_is_idempotent()
    test_one_pipeline.test_hlc_monotone_and_bounded_on_skewed_hosts()
    test_one_pipeline.test_hlc_stays_real_without_clock_sync()
    test_one_pipeline.test_perfetto_and_clickhouse_rows_show_the_corrected_times()
    test_causal_order.test_logical_part_carries_into_physical_on_overflow()


def test_stream_core_properties_still_hold() -> None:  # Lamport via apply_causality, edges via track_streams
    test_stream_core.test_pipe_edge_and_lamport_consistency()
    test_stream_core.test_tcp_edges_and_offset_within_bound()
