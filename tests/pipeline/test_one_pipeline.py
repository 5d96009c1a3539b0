"""One recorded multi-process, two-host event set through all four entry points -> identical traces.

The entry points are called as they run: ``sysweave trace``'s ``store_trace`` and ``sysweave validate``'s
``store_report`` (their store replaced by a recorder that keeps what they store), the stream worker's
``TraceBuffer`` + ``finish`` (fed per-host batches under a trace-label key, as agents send them), and the
validator service's ``handle_trace`` on the message the worker emits (its ClickHouse sink replaced by a
recorder). Live Kafka, ClickHouse and eBPF are covered by tests/distributed and tests/validation.
"""

from __future__ import annotations

import argparse
import dataclasses
import doctest
import itertools
import random
from collections import deque
from types import SimpleNamespace
from typing import Any, ClassVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sysweave.schemas import topics
from sysweave.schemas.clocks import hlc_unpack, ns_to_hlc_ticks
from sysweave.schemas.events import EdgeKind, UnifiedTrace
from sysweave.streams.buffer import TraceBuffer, finish, trace_id_for
from sysweave.streams.pipeline import build_trace, trace_events
from sysweave.streams.worker import encode_trace, trace_headers

from .recorded import recorded_events

LABEL = "job-42"


class RecordingStore:
    """Stands in for the embedded store: keeps what an entry point stores (no SQL, no chdb)."""

    traces: ClassVar[list[UnifiedTrace]] = []
    rows: ClassVar[dict[str, list[Any]]] = {}

    def __init__(self, *_a: Any, **_k: Any) -> None:
        pass

    def store_trace(self, trace: UnifiedTrace, **_kw: Any) -> None:
        RecordingStore.traces.append(trace)

    def add_trace(self, trace: UnifiedTrace, **_kw: Any) -> int:
        RecordingStore.traces.append(trace)
        return 0

    def insert(self, table: str, rows: list[Any]) -> None:
        RecordingStore.rows.setdefault(table, []).extend(rows)

    def close(self) -> None:
        pass


@pytest.fixture
def store(monkeypatch: pytest.MonkeyPatch) -> type[RecordingStore]:
    import sysweave.validator.store.embedded as embedded

    RecordingStore.traces, RecordingStore.rows = [], {}
    monkeypatch.setattr(embedded, "EmbeddedStore", RecordingStore)
    return RecordingStore


def via_trace_cli(events: list, store: type[RecordingStore]) -> UnifiedTrace:
    from sysweave.cli.trace import store_trace

    store_trace(argparse.Namespace(store="unused", label=LABEL), events, SimpleNamespace(backend="ebpf", exit_code=0),
                ["python3", "coordinator.py"])  # type: ignore[arg-type]
    return store.traces.pop()


def via_validate(events: list, store: type[RecordingStore]) -> tuple[UnifiedTrace, list]:
    from sysweave.cli.validate import data_flow, store_report

    run = SimpleNamespace(events=events, result=SimpleNamespace(exit_code=0, root_pid=100, backend="ebpf"), workdir="/w")
    side = SimpleNamespace(runs=[run], obs=SimpleNamespace(root=None))
    report = {"original": "a", "transpiled": "b", "verdict": "equivalent", "confidence": 1.0, "explanation": "",
              "performance": {"speedup": 1.0}}
    store_report(argparse.Namespace(store="unused", original="a", transpiled="b"), report, side, side)  # type: ignore[arg-type]
    original, transpiled = store.traces[-2:]
    assert snapshot(original) == snapshot(transpiled)
    assert store.rows["validation_results"][0]["original_trace_id"] == original.trace_id.hex()
    return original, data_flow(side)  # type: ignore[arg-type]


def via_worker(by_host: dict[str, list]) -> UnifiedTrace:
    buf = TraceBuffer(grace_s=1.0, inactivity_s=5.0)
    batches = [(h, evs[i:i + 7]) for h, evs in by_host.items() for i in range(0, len(evs), 7)]
    random.Random(7).shuffle(batches)  # batches of the two agents interleave on the partition
    for n, (_h, evs) in enumerate(batches):
        buf.add(LABEL.encode(), evs, now_s=n * 0.01)
    (t,) = buf.ready(now_s=100.0)
    done = finish(t)
    assert done.warnings == []
    return done.trace


def via_service(worker_trace: UnifiedTrace, store: type[RecordingStore]) -> UnifiedTrace:
    from sysweave.validator.service import ValidatorService

    svc = ValidatorService.__new__(ValidatorService)  # no broker, no server: just the handler
    svc.sink, svc.exporter, svc.otlp_queue, svc.max_otlp_queue = store(), None, deque(), 10  # type: ignore[assignment]
    svc.stats = {"traces": 0}
    msg = SimpleNamespace(topic=topics.TOPIC_TRACES, partition=0, offset=0, key=worker_trace.trace_id.hex().encode(),
                          value=encode_trace(worker_trace), headers=trace_headers(worker_trace))
    svc.handle_trace(msg)
    assert svc.stats["traces"] == 1
    return store.traces.pop()


def snapshot(trace: UnifiedTrace) -> UnifiedTrace:
    """Everything but the id and label (the CLI and validate draw fresh ids; validate labels by side)."""
    return dataclasses.replace(trace, trace_id=b"", label="")


def test_four_entry_points_build_identical_traces(store: type[RecordingStore]) -> None:
    rec = recorded_events()
    cli = via_trace_cli(list(rec.events), store)
    validated, flow = via_validate(list(reversed(rec.events)), store)
    worker = via_worker(rec.by_host)
    service = via_service(worker, store)

    assert snapshot(cli) == snapshot(validated) == snapshot(worker) == snapshot(service)
    assert cli.label == worker.label == service.label == LABEL
    assert worker.trace_id == service.trace_id == trace_id_for(LABEL.encode())

    # what the identical trace holds: processes, edges, corrected times, real stamps
    t = worker
    assert set(t.processes) == {("A", 100), ("A", 101), ("B", 200)}
    assert t.processes[("A", 101)].parent == ("A", 100) and t.processes[("A", 101)].exit_code == 0
    kinds = [e.kind for e in t.edges]
    assert kinds.count(EdgeKind.FORK) == 1 and kinds.count(EdgeKind.EXIT_WAIT) == 1 and kinds.count(EdgeKind.PIPE) == 1
    assert kinds.count(EdgeKind.TCP) == 8  # 4 requests + 4 replies
    (clock,) = t.clocks
    assert clock.host == "B" and clock.reference == "A" and abs(clock.offset_ns - rec.offset_b_ns) <= clock.bound_ns
    raw = {e.h.event_id: e for e in rec.events}
    for key, p in t.processes.items():
        shift = clock.offset_ns if key[0] == "B" else 0
        for e in p.events:
            assert e.h.wall_ns == raw[e.h.event_id].h.wall_ns - shift  # corrected once, not twice
            assert e.h.stamp.hlc > 0
    assert all(x.h.wall_ns == raw[x.h.event_id].h.wall_ns - clock.offset_ns for x in t.lost)
    events = {e.h.event_id: e for e in trace_events(t)}
    for edge in t.edges:  # causality holds in Lamport and HLC, and receives end after their sends start
        s, r = events[edge.src], events[edge.dst]
        assert s.h.stamp.lamport < r.h.stamp.lamport and s.h.stamp.hlc < r.h.stamp.hlc
        assert r.h.wall_ns + r.h.duration_ns >= s.h.wall_ns
        assert edge.h.stamp == r.h.stamp
    # validate's data flow (by role) comes from the same edges: the child's pipe write, TCP both ways
    assert flow == [("PIPE", "python3 coordinator.py", "root"), ("TCP", "python3 server.py 7000", "root"),
                    ("TCP", "root", "python3 server.py 7000")]


def test_docstring_examples() -> None:
    import sysweave.streams.pipeline as pipeline
    import sysweave.streams.pipeline.hlc as hlc

    assert doctest.testmod(pipeline).failed == 0 and doctest.testmod(hlc).failed == 0
    assert topics.label_of_key(b"h1/42", ["h1"]) == "" and topics.label_of_key(b"job-7", ["h1"]) == "job-7"
    assert topics.label_of_key(b"team/7", ["h1"]) == "team/7"  # not a host of the trace: a label


def test_the_pipeline_is_idempotent() -> None:
    rec = recorded_events(offset_b_ns=-3_000_000, rounds=2)
    once = build_trace(rec.events, b"i" * 16, LABEL).trace
    twice = build_trace(trace_events(once), b"i" * 16, LABEL).trace
    assert twice == once


# --- HLC on traces with skewed hosts ------------------------------------------------------------------

def causal_past(trace: UnifiedTrace) -> dict[bytes, set[bytes]]:
    preds: dict[bytes, set[bytes]] = {}
    for p in trace.processes.values():
        last: dict[int, bytes] = {}
        for e in sorted(p.events, key=lambda x: (x.h.mono_ns, x.h.event_id)):
            preds[e.h.event_id] = {last[e.h.tid]} if e.h.tid in last else set()
            last[e.h.tid] = e.h.event_id
    for edge in trace.edges:
        if edge.dst in preds and edge.src in preds:
            preds[edge.dst].add(edge.src)
    past: dict[bytes, set[bytes]] = {}

    def walk(eid: bytes) -> set[bytes]:
        if eid not in past:
            past[eid] = {eid}
            for q in preds[eid]:
                past[eid] |= walk(q)
        return past[eid]

    for eid in preds:
        walk(eid)
    return past


@given(st.integers(-10**9, 10**9), st.integers(1_000, 5_000_000), st.integers(1, 5))
@settings(max_examples=40, deadline=None)
def test_hlc_monotone_and_bounded_on_skewed_hosts(offset: int, delay: int, rounds: int) -> None:
    rec = recorded_events(offset_b_ns=offset, delay_ns=delay, rounds=rounds)
    done = build_trace(rec.events, b"h" * 16)
    t = done.trace
    assert done.warnings == [] and len(t.clocks) == 1
    events = {e.h.event_id: e for p in t.processes.values() for e in p.events}
    for p in t.processes.values():  # program order
        evs = sorted(p.events, key=lambda x: (x.h.mono_ns, x.h.event_id))
        for x, y in itertools.pairwise(evs):
            if x.h.tid == y.h.tid:
                assert x.h.stamp.hlc < y.h.stamp.hlc
    for edge in t.edges:
        assert events[edge.src].h.stamp.hlc < events[edge.dst].h.stamp.hlc
    past = causal_past(t)
    for eid, e in events.items():
        phys, _c = hlc_unpack(e.h.stamp.hlc)
        pt = ns_to_hlc_ticks(e.h.wall_ns)
        # Kulkarni: l is the largest physical time in the causal past (never below the event's own time) ...
        assert phys == max(ns_to_hlc_ticks(events[q].h.wall_ns) for q in past[eid]) >= pt
        # ... and, with clocks corrected, no further ahead of it than the event's own end
        assert phys <= ns_to_hlc_ticks(e.h.wall_ns + e.h.duration_ns)


def test_hlc_stays_real_without_clock_sync() -> None:
    """Hosts that cannot be corrected (no two-way exchange) still get HLCs that respect causality."""
    rec = recorded_events(rounds=0)
    t = build_trace(rec.events, b"n" * 16).trace
    assert t.clocks == []
    assert all(e.h.stamp.hlc > 0 for p in t.processes.values() for e in p.events)


def test_perfetto_and_clickhouse_rows_show_the_corrected_times() -> None:
    """The same corrected wall times in every output: Perfetto's µs offsets and the ClickHouse/chdb rows
    (OTLP against the real Jaeger: tests/validation/test_otlp.py)."""
    from sysweave.schemas.rows import trace_rows
    from sysweave.validator.export.perfetto import to_chrome_trace

    rec = recorded_events()
    t = build_trace(rec.events, b"p" * 16, LABEL).trace
    (clock,) = t.clocks
    t0 = min(p.start_wall_ns for p in t.processes.values())
    doc = to_chrome_trace(t)
    pid_b = next(e["pid"] for e in doc["traceEvents"] if e["ph"] == "M" and "[B pid 200]" in e["args"]["name"])
    shown = sorted((e["name"], e["ts"]) for e in doc["traceEvents"] if e["ph"] == "X" and e["pid"] == pid_b)
    want = sorted((e.name, (e.h.wall_ns - t0) / 1000) for e in t.processes[("B", 200)].events if hasattr(e, "name")
                  and hasattr(e, "nr"))
    assert shown == want and shown
    raw = {e.h.event_id: e.h.wall_ns for e in rec.events}
    rows = trace_rows(t, LABEL)["syscall_spans"]
    assert rows and all(r["wall_ns"] == raw[r["event_id"]] - (clock.offset_ns if r["host_id"] == "B" else 0)
                        for r in rows)
    assert all(r["hlc"] > 0 for r in rows)
