"""Trace history in a ClickHouse server over the native protocol (clickhouse-driver), batched and retried.

Inserts are columnar native blocks of the stored columns (``schemas.columns``: the one trace-to-columns path every
store uses, Strings as bytes): no SQL text, any size. Retries: ``retry.py``; the URL: ``url.py``.

Idempotent under redelivery: every table is a ReplacingMergeTree keyed by event id (or trace id + version),
so a batch written twice collapses to one row for queries that use FINAL (the named queries do) and after
merges. Between the caller and the server sits a bounded buffer of columns: rows beyond it are dropped and
counted, never silently.

Errors: ``SinkUnavailable`` (not reachable before the retry deadline), ``SinkRejected`` (the server refused the
data: retrying cannot help), ``QueryError`` (user SQL), all in ``base.py``.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Sequence
from typing import Any

from sysweave.schemas import ddl
from sysweave.schemas.columns import columnar, iter_trace_columns
from sysweave.schemas.events import UnifiedTrace
from sysweave.schemas.rows import TABLES, Column, Row
from sysweave.validator.store import migration_lock, reader
from sysweave.validator.store.base import (
    SQL_HINT,
    OutputFormat,
    QueryError,
    SinkError,
    SinkRejected,
    SinkUnavailable,
    StoreError,
    TraceSummary,
    server_message,
    store_label,
)
from sysweave.validator.store.formats import format_rows
from sysweave.validator.store.retry import RetryPolicy, retry
from sysweave.validator.store.url import parse_url

__all__ = ["INSERT_CHUNK_ROWS", "ClickHouseSink", "RetryPolicy", "ServerStore", "SinkError", "SinkRejected",
           "SinkUnavailable", "parse_url", "retry"]


INSERT_CHUNK_ROWS = 100_000  # rows per INSERT when storing a trace (one server part each; merged later)
Columns = list[tuple[Column, Any]]


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
        self._buffer: dict[str, Columns] = {}  # table -> its stored columns, appended piece by piece
        self.buffered = 0
        self.max_buffered_rows = max_buffered_rows
        self.dropped = 0
        self.inserted = 0
        self.retries = 0
        self.stop = threading.Event()
        self.lock_timing = migration_lock.LockTiming()

    def _call(self, fn: Callable[[], Any], refused: type[StoreError] = SinkRejected) -> Any:
        """Retry ``fn`` on network errors (policy); a refusal by the server becomes ``refused`` at once."""
        def counted(_exc: BaseException) -> None:
            self.retries += 1

        try:
            return retry(self.policy, fn, self._retryable, self.stop, counted)
        except migration_lock.MigrationLocked:
            raise  # reachable, but another migrator holds the schema: its message says what to do
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
        """Apply the pending migrations, one migrator per database at a time (``migration_lock``)."""
        self._call(self._create_database)
        if not self._call(lambda: ddl.pending(self._client.execute)):
            return []
        me = migration_lock.this_holder()
        self._call(lambda: migration_lock.acquire(self._client.execute, me, self.lock_timing, self.description))
        try:
            return self._call(lambda: ddl.migrate(self._client.execute))  # type: ignore[no-any-return]
        finally:
            self._call(lambda: migration_lock.release(self._client.execute, me))

    def _create_database(self) -> None:
        try:
            self._admin.execute(f"CREATE DATABASE IF NOT EXISTS {self.database}")
        except self._errors.ServerException:
            # 18.16's IF NOT EXISTS is not atomic: a concurrent creator can win between its check and its create
            if not self._admin.execute("SELECT count() FROM system.databases WHERE name = %(db)s",
                                       {"db": self.database})[0][0]:
                raise

    def _write_columns(self, table: str, cols: Columns) -> int:
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
        if table not in TABLES:
            raise SinkRejected(f"no column map for table {table!r} (sysweave.schemas.rows.TABLES)")
        return self._write_columns(table, columnar(table, rows)) if rows else 0

    def store_trace(self, trace: UnifiedTrace, label: str | None = None, backend: str = "", exit_code: int = 0) -> None:
        """Columns straight from the trace (``columns.iter_trace_columns``) in pieces of ``INSERT_CHUNK_ROWS``; each
        piece is inserted by a sender thread while the next is built, so the server's work on one overlaps the
        building of the next (at most one built piece waits: memory stays bounded by the chunk size)."""
        pieces = iter_trace_columns(trace, store_label(trace, label), backend, exit_code, arrays=True,
                                    chunk_rows=INSERT_CHUNK_ROWS)
        waiting: queue.Queue[tuple[str, Columns] | None] = queue.Queue(maxsize=1)
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

    def _buffer_columns(self, table: str, cols: Columns) -> int:
        """Append one piece of ``table``'s stored columns to the buffer; returns the rows dropped (buffer full)."""
        if table not in TABLES:
            raise SinkRejected(f"no column map for table {table!r} (sysweave.schemas.rows.TABLES)")
        n = len(cols[0][1]) if cols else 0
        keep = min(n, max(self.max_buffered_rows - self.buffered, 0))
        self.dropped += n - keep
        if keep:
            have = self._buffer.get(table)
            if have is None:
                self._buffer[table] = [(c, list(v[:keep])) for c, v in cols]
            else:
                by_name = {c.name: v for c, v in cols}
                for c, values in have:
                    values.extend(by_name[c.name][:keep])
            self.buffered += keep
        return n - keep

    def add_rows(self, table: str, rows: list[Row]) -> int:
        """Buffer rows; returns how many were dropped because the buffer is full (counted in ``dropped``)."""
        return self._buffer_columns(table, columnar(table, rows)) if rows else 0

    def add_trace(self, trace: UnifiedTrace, label: str | None = None, backend: str = "", exit_code: int = 0) -> int:
        """Buffer a trace's columns (``columns.iter_trace_columns``, as ``store_trace`` writes them); returns the
        rows dropped."""
        pieces = iter_trace_columns(trace, store_label(trace, label), backend, exit_code)
        return sum(self._buffer_columns(table, cols) for table, cols in pieces)

    def flush(self) -> int:
        """Insert everything buffered, one columnar INSERT per table; returns rows written."""
        written = 0
        for table in list(self._buffer):
            cols = self._buffer.pop(table)
            n = len(cols[0][1]) if cols else 0
            try:
                written += self._write_columns(table, cols)
            except BaseException:
                self._buffer[table] = cols  # kept for the next flush (the caller commits no offsets)
                raise
            self.buffered -= n
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
