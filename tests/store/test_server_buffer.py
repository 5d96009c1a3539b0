"""The validator service's way to the server (``add_trace``/``add_rows`` into the bounded buffer, ``flush``) writes
the same columns as ``store_trace`` (one trace-to-columns path), and counts what a full buffer drops."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from sysweave.validator.store import open_store
from sysweave.validator.store.server import ServerStore

from .conftest import server_url
from .traces import canonical, every_event_trace

pytestmark = pytest.mark.clickhouse


@pytest.fixture
def server(clickhouse_hostport: tuple[str, int]) -> Iterator[ServerStore]:
    db = f"t_buf_{uuid.uuid4().hex[:10]}"
    store = open_store(server_url(clickhouse_hostport, db))
    assert isinstance(store, ServerStore)
    yield store
    store.execute(f"DROP DATABASE IF EXISTS {db}")
    store.close()


def test_buffered_trace_reads_back_exactly(server: ServerStore) -> None:
    tr = every_event_trace()  # (one per database: its event ids repeat in every such trace, and keys collapse them)
    assert server.add_trace(tr, label="buffered") == 0
    assert server.add_rows("validation_results", [{"validation_id": "v", "verdict": "equivalent"}]) == 0
    assert server.buffered > 0 and server.flush() > 0 and server.buffered == 0
    assert canonical(server.load_trace("buffered")) == canonical(tr)
    assert server.execute("SELECT verdict FROM validation_results") == [("equivalent",)]


def test_a_full_buffer_drops_and_counts(server: ServerStore) -> None:
    server.max_buffered_rows = 5
    tr = every_event_trace()
    dropped = server.add_trace(tr)
    total = server.buffered + dropped
    assert server.buffered == 5 and dropped == total - 5 and server.metrics()["dropped_rows"] == dropped
    assert server.flush() == 5
