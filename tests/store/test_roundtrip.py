"""trace -> store -> load == trace, on both stores: every event type and table, random traces drawn from the
column map, and a 200,000-event trace with its validation report (inserted without SQL text)."""

from __future__ import annotations

import json
import time

import pytest
from hypothesis import HealthCheck, given, settings

from sysweave.schemas.events import EVENT_TYPES
from sysweave.schemas.rows import EVENT_TABLES, TABLES
from sysweave.validator.store.base import AmbiguousTrace, TraceNotFound, TraceStore

from .traces import big_trace, canonical, every_event_trace, traces


def test_every_event_type_has_a_table() -> None:
    assert {t.cls for t in EVENT_TABLES} == set(EVENT_TYPES.values())
    tr = every_event_trace()
    kinds = {type(e) for p in tr.processes.values() for e in p.events}
    kinds |= {type(e) for e in [*tr.edges, *tr.clocks, *tr.hosts, *tr.lost]}
    assert kinds == set(EVENT_TYPES.values()), "every_event_trace holds one of each event type"


def test_both_stores_implement_the_protocol(store: TraceStore) -> None:
    assert isinstance(store, TraceStore)
    assert store.server_version()[:2].isdigit() and store.description


def test_every_event_type_and_table_round_trips(store: TraceStore) -> None:
    tr = every_event_trace()
    store.store_trace(tr, label="every-event", backend="test", exit_code=3)
    back = store.load_trace(tr.trace_id.hex())
    assert canonical(back) == canonical(tr)
    assert back.label == "every-event"
    stored = {t.name for t in EVENT_TABLES if store.execute(f"SELECT count() FROM {t.name}")[0][0]}
    assert stored == {t.name for t in EVENT_TABLES}, "every event table holds rows"
    # by label, too
    assert canonical(store.load_trace("every-event")) == canonical(tr)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(tr=traces())
def test_random_traces_round_trip(module_store: TraceStore, tr) -> None:  # type: ignore[no-untyped-def]
    module_store.store_trace(tr)
    back = module_store.load_trace(tr.trace_id.hex())
    assert canonical(back) == canonical(tr) and back.label == tr.label


def test_lookup_by_label(store: TraceStore) -> None:
    a, b, c = every_event_trace(), every_event_trace(), every_event_trace()
    store.store_trace(a, label="nightly")
    store.store_trace(b, label="nightly")
    store.store_trace(c, label="it's \\ unique")
    assert store.load_trace("it's \\ unique").trace_id == c.trace_id
    with pytest.raises(AmbiguousTrace) as err:
        store.load_trace("nightly")
    assert a.trace_id.hex() in str(err.value) and b.trace_id.hex() in str(err.value)
    with pytest.raises(TraceNotFound):
        store.load_trace("no-such-label")
    with pytest.raises(TraceNotFound):
        store.load_trace("0" * 32)
    labels = {t.label for t in store.list_traces()}
    assert {"nightly", "it's \\ unique"} <= labels


def test_200k_event_trace_and_report_round_trip(store: TraceStore) -> None:
    tr = big_trace(200_000)
    t0 = time.perf_counter()
    store.store_trace(tr, label="big")
    t1 = time.perf_counter()
    report = {"verdict": "equivalent", "notes": ["x" * 100] * 5_000, "trace_id": tr.trace_id.hex()}  # ~0.5 MB
    store.insert("validation_results", [{
        "validation_id": "v-big", "created_wall_ns": time.time_ns(), "original_cmd": "a", "transpiled_cmd": "b",
        "original_trace_id": tr.trace_id.hex(), "transpiled_trace_id": tr.trace_id.hex(), "verdict": "equivalent",
        "confidence": 1.0, "explanation": "same", "speedup": 1.5, "report": json.dumps(report), "version": 1}])
    t2 = time.perf_counter()
    back = store.load_trace("big")
    t3 = time.perf_counter()
    print(f"\n{store.description}: store 200k events {t1 - t0:.2f} s, report {t2 - t1:.2f} s, load {t3 - t2:.2f} s")
    assert sum(len(p.events) for p in back.processes.values()) == 200_000
    assert canonical(back) == canonical(tr)
    (text,) = store.execute("SELECT report FROM validation_results FINAL WHERE validation_id = 'v-big'")[0]
    assert json.loads(text) == report


def test_column_map_covers_every_table(store: TraceStore) -> None:
    tables = {r[0] for r in store.execute("SHOW TABLES")}
    plain = {t for t in tables if not t.startswith((".inner", "sysweave_migrations", "syscall_latency_daily", "trace_index"))}
    assert plain == set(TABLES)
