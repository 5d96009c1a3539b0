"""Every named query runs on both stores (chdb and the ClickHouse 18.16 server) and returns rows on stored data."""

from __future__ import annotations

import time

import pytest

from sysweave.validator.store.base import TraceStore
from sysweave.validator.store.named_queries import NAMED_QUERIES

from .traces import every_event_trace


@pytest.fixture(params=["embedded", pytest.param("server", marks=pytest.mark.clickhouse)], scope="module")
def filled(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    from .conftest import _open

    gen = _open(request.param, request, tmp_path_factory)
    store = next(gen)
    for i in range(2):  # two traces: "regressions" compares the latest two
        store.store_trace(every_event_trace(), label=f"run-{i}", backend="test")
    store.insert("validation_results", [{"validation_id": "v1", "created_wall_ns": time.time_ns(), "verdict": "equivalent",
                                         "confidence": 1.0, "original_cmd": "a", "transpiled_cmd": "b", "report": "{}",
                                         "version": 1}])
    yield store
    gen.close()


@pytest.mark.parametrize("name", sorted(NAMED_QUERIES))
def test_named_query_runs_and_returns_rows(filled: TraceStore, name: str) -> None:
    rows = filled.execute(NAMED_QUERIES[name][1])
    assert rows, f"{name} returned no rows on {filled.description}"
    for fmt in ("table", "json", "csv", "tsv"):
        assert filled.query(NAMED_QUERIES[name][1], fmt)  # type: ignore[arg-type]


def test_traces_query_shows_the_label(filled: TraceStore) -> None:
    rows = filled.execute(NAMED_QUERIES["traces"][1])
    assert {r[1] for r in rows} == {"run-0", "run-1"}
