"""Trace history in a ClickHouse server over the native protocol (clickhouse-driver), batched and retried.

Inserts are columnar native blocks (``schemas.columns.columnar``, Strings as bytes): no SQL text, any size.

Idempotent under redelivery: every table is a ReplacingMergeTree keyed by event id (or trace id + version),
so a batch written twice collapses to one row for queries that use FINAL (the named queries do) and after
merges. Between the caller and the server sits a bounded buffer: rows beyond it are dropped and counted,
never silently.

Errors::

    SinkError (a StoreError)
      ├── SinkUnavailable   -- the server was not reachable before the retry deadline (also a StoreUnavailable)
      └── SinkRejected      -- the server refused the data itself (schema mismatch): retrying cannot help
    user SQL the server refuses raises QueryError (base.py)
"""

from __future__ import annotations

import logging
import queue
import random
import re
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

from sysweave.schemas import ddl
from sysweave.schemas.columns import columnar, iter_trace_columns
from sysweave.schemas.events import UnifiedTrace
from sysweave.schemas.rows import TABLES, Column, Row, trace_rows
from sysweave.validator.store import reader
from sysweave.validator.store.base import (
    SQL_HINT,
    OutputFormat,
    QueryError,
    StoreError,
    StoreUnavailable,
    TraceSummary,
    server_message,
    store_label,
)
from sysweave.validator.store.formats import format_rows

__all__ = ["INSERT_CHUNK_ROWS", "ClickHouseSink", "RetryPolicy", "ServerStore", "SinkError", "SinkRejected",
           "SinkUnavailable", "parse_url", "retry"]


INSERT_CHUNK_ROWS = 100_000  # rows per INSERT when storing a trace (one server part each; merged later)


class SinkError(StoreError):
    pass


class SinkUnavailable(SinkError, StoreUnavailable):
    pass


class SinkRejected(SinkError):
    pass


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff with jitter and an overall deadline. Delays: 0.2, 0.4, 0.8 ... capped at 5 s,
    each scaled by a random factor in [1 - jitter, 1 + jitter]."""

    initial_s: float = 0.2
    max_s: float = 5.0
    multiplier: float = 2.0
    jitter: float = 0.2
    deadline_s: float = 60.0

    def delays(self) -> Any:
        delay = self.initial_s
        while True:
            yield delay * random.uniform(1 - self.jitter, 1 + self.jitter)
            delay = min(delay * self.multiplier, self.max_s)


def retry(policy: RetryPolicy, op: Callable[[], Any], retryable: tuple[type[BaseException], ...],
          stop: threading.Event | None = None, on_retry: Callable[[BaseException], None] | None = None) -> Any:
    """Run ``op`` until it succeeds, a non-retryable error occurs, or the deadline passes.
    ``stop`` interrupts the waits (shutdown)."""
    deadline = time.monotonic() + policy.deadline_s
    for delay in policy.delays():
        try:
            return op()
        except retryable as exc:
            if on_retry:
                on_retry(exc)
            remaining = deadline - time.monotonic()
            if remaining <= 0 or (stop is not None and stop.is_set()):
                raise SinkUnavailable(f"gave up after {policy.deadline_s:.0f} s: {exc}") from exc
            wait = min(delay, remaining)
            if stop is not None:
                stop.wait(wait)
            else:
                time.sleep(wait)
    raise AssertionError("unreachable")


def parse_url(url: str) -> tuple[str, int, str]:
    """clickhouse://host:9000/db -> (host, port, database). Example: 'clickhouse://127.0.0.1:9000/sysweave'."""
    u = urlparse(url if "://" in url else f"clickhouse://{url}")
    if u.scheme not in ("clickhouse", "tcp"):
        raise ValueError(f"ClickHouse URL {url!r}: use clickhouse://HOST:PORT/DATABASE (native protocol)")
    db = (u.path or "/").strip("/") or "sysweave"
    if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", db):
        raise ValueError(f"ClickHouse URL {url!r}: the database name must be letters, digits and '_'")
    return u.hostname or "127.0.0.1", u.port or 9000, db


class ServerStore:
    """A ClickHouse server database as a :class:`~sysweave.validator.store.base.TraceStore`.

    Two ways to write: ``insert``/``store_trace`` write now (the CLI); ``add_rows``/``add_trace`` fill the
    bounded buffer and ``flush`` writes it, one columnar insert per table (the validator service, which
    commits Kafka offsets only after ``flush`` returns)."""

    def __init__(self, url: str, max_buffered_rows: int = 2_000_000, policy: RetryPolicy | None = None) -> None:
        from clickhouse_driver import Client, errors

        # the driver logs every failed connect with a traceback; the retry loop reports outages itself
        logging.getLogger("clickhouse_driver.connection").addHandler(logging.NullHandler())
        self.host, self.port, self.database = parse_url(url)
        self.description = f"ClickHouse at {self.host}:{self.port}/{self.database}"
        self.policy = policy or RetryPolicy()
        self._errors = errors
        self._retryable: tuple[type[BaseException], ...] = (errors.NetworkError, errors.SocketTimeoutError, EOFError,
                                                            ConnectionError, OSError)
        self._client = Client(self.host, port=self.port, database=self.database, connect_timeout=3,
                              send_receive_timeout=60)
        self._admin = Client(self.host, port=self.port, connect_timeout=3)
        self._buffer: dict[str, list[Row]] = {}
        self.buffered = 0
        self.max_buffered_rows = max_buffered_rows
        self.dropped = 0
        self.inserted = 0
        self.retries = 0
        self.stop = threading.Event()

    def _call(self, fn: Callable[[], Any], refused: type[StoreError] = SinkRejected) -> Any:
        """Retry ``fn`` on network errors (policy); a refusal by the server becomes ``refused`` at once."""
        def counted(_exc: BaseException) -> None:
            self.retries += 1

        try:
            return retry(self.policy, fn, self._retryable, self.stop, counted)
        except SinkUnavailable as exc:
            raise SinkUnavailable(f"{self.description} is unreachable: {exc}; start it ('make services-up') "
                                  "or check the URL (clickhouse://HOST:PORT/DATABASE, native port 9000)") from exc
        except self._errors.ServerException as exc:
            first = server_message(exc.message or str(exc))
            if refused is QueryError:
                raise QueryError(f"{first}\n({SQL_HINT})") from exc
            raise refused(f"{self.description} refused the request: {first}") from exc

    # --- reads ---------------------------------------------------------------------------------------------

    def execute(self, sql: str) -> list[tuple[Any, ...]]:
        return self._call(lambda: self._client.execute(sql), QueryError)  # type: ignore[no-any-return]

    def fetch_raw(self, sql: str) -> list[tuple[Any, ...]]:
        return self._call(lambda: self._client.execute(sql, settings={"strings_as_bytes": True}),  # type: ignore[no-any-return]
                          QueryError)

    def query(self, sql: str, fmt: OutputFormat = "table") -> bytes:
        rows, meta = self._call(lambda: self._client.execute(sql, with_column_types=True), QueryError)
        return format_rows([m[0] for m in meta], [m[1] for m in meta], rows, fmt)

    def server_version(self) -> str:
        return str(self.execute("SELECT version()")[0][0])

    # --- writes --------------------------------------------------------------------------------------------

    def migrate(self) -> list[ddl.Migration]:
        self._call(lambda: self._admin.execute(f"CREATE DATABASE IF NOT EXISTS {self.database}"))
        return self._call(lambda: ddl.migrate(self._client.execute))  # type: ignore[no-any-return]

    def _write(self, table: str, rows: Sequence[Row]) -> int:
        if table not in TABLES:
            raise SinkRejected(f"no column map for table {table!r} (sysweave.schemas.rows.TABLES)")
        return self._write_columns(table, columnar(table, rows))

    def _write_columns(self, table: str, cols: Sequence[tuple[Column, Any]]) -> int:
        """One columnar native INSERT of ``rows.stored`` columns; returns the rows written."""
        n = len(cols[0][1]) if cols else 0
        if not n:
            return 0
        sql = f"INSERT INTO {table} ({', '.join(c.name for c, _ in cols)}) VALUES"
        data = [values for _c, values in cols]
        settings: dict[str, Any] = {"strings_as_bytes": True}
        if any(hasattr(v, "dtype") for v in data):  # numpy integer columns (columns.trace_columns(arrays=True))
            import numpy as np

            # the driver's numpy mode writes integer arrays as they are; every column must then be an array
            data = [v if hasattr(v, "dtype") else np.array(v, dtype=object) for v in data]
            settings["use_numpy"] = True
        self._call(lambda: self._client.execute(sql, data, columnar=True, settings=settings))
        self.inserted += n
        return n

    def insert(self, table: str, rows: Sequence[Row]) -> int:
        """Write now (not through the buffer)."""
        return self._write(table, rows) if rows else 0

    def store_trace(self, trace: UnifiedTrace, label: str | None = None, backend: str = "", exit_code: int = 0) -> None:
        """Columns straight from the trace (``columns.iter_trace_columns``) in pieces of ``INSERT_CHUNK_ROWS``; each
        piece is inserted by a sender thread while the next is built, so the server's work on one overlaps the
        building of the next (at most one built piece waits: memory stays bounded by the chunk size)."""
        pieces = iter_trace_columns(trace, store_label(trace, label), backend, exit_code, arrays=True,
                                    chunk_rows=INSERT_CHUNK_ROWS)
        waiting: queue.Queue[tuple[str, Sequence[tuple[Column, Any]]] | None] = queue.Queue(maxsize=1)
        failed: list[BaseException] = []

        def send() -> None:
            while (item := waiting.get()) is not None:
                if not failed:
                    try:
                        self._write_columns(*item)
                    except BaseException as exc:  # re-raised in the caller's thread
                        failed.append(exc)

        sender = threading.Thread(target=send, name="sysweave-insert", daemon=True)
        sender.start()
        try:
            for table, cols in pieces:
                if failed:
                    break
                if table not in TABLES:
                    raise SinkRejected(f"no column map for table {table!r} (sysweave.schemas.rows.TABLES)")
                waiting.put((table, cols))
        finally:
            waiting.put(None)
            sender.join()
        if failed:
            raise failed[0]

    def add_rows(self, table: str, rows: list[Row]) -> int:
        """Buffer rows; returns how many were dropped because the buffer is full (counted in ``dropped``)."""
        room = max(self.max_buffered_rows - self.buffered, 0)
        keep = rows[:room]
        lost = len(rows) - len(keep)
        self.dropped += lost
        self._buffer.setdefault(table, []).extend(keep)
        self.buffered += len(keep)
        return lost

    def add_trace(self, trace: UnifiedTrace, label: str | None = None, backend: str = "", exit_code: int = 0) -> int:
        rows = trace_rows(trace, store_label(trace, label), backend, exit_code)
        return sum(self.add_rows(t, r) for t, r in rows.items())

    def flush(self) -> int:
        """Insert everything buffered, one columnar INSERT per table; returns rows written."""
        written = 0
        for table in list(self._buffer):
            rows = self._buffer[table]
            if not rows:
                continue
            written += self._write(table, rows)
            self.buffered -= len(rows)
            self._buffer[table] = []
        return written

    def discard_buffered(self) -> int:
        """Forget the buffered rows (their source will redeliver them); returns how many."""
        n = self.buffered
        self._buffer.clear()
        self.buffered = 0
        return n

    def metrics(self) -> dict[str, int]:
        return {"inserted_rows": self.inserted, "dropped_rows": self.dropped, "buffered_rows": self.buffered,
                "retries": self.retries}

    # --- traces --------------------------------------------------------------------------------------------

    def load_trace(self, ref: str) -> UnifiedTrace:
        return reader.load_trace(self.fetch_raw, ref)

    def list_traces(self, limit: int = 20, label: str | None = None) -> list[TraceSummary]:
        return reader.list_traces(self.fetch_raw, limit, label)

    def close(self) -> None:
        self.stop.set()
        self._client.disconnect()
        self._admin.disconnect()


ClickHouseSink = ServerStore  # the name the validator service has used
