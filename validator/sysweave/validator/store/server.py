"""Trace history in a ClickHouse server over the native protocol (clickhouse-driver), batched and retried.

Idempotent under redelivery: every table is a ReplacingMergeTree keyed by event id (or trace id + version),
so a batch written twice collapses to one row for queries that use FINAL (the named queries do) and after
merges. Between the caller and the server sits a bounded buffer: rows beyond it are dropped and counted,
never silently.

Errors::

    SinkError
      ├── SinkUnavailable   -- the server did not accept the batch before the retry deadline
      └── SinkRejected      -- the server refused the data itself (schema mismatch): retrying cannot help
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

from sysweave.schemas import ddl
from sysweave.schemas.events import UnifiedTrace
from sysweave.schemas.rows import Row, trace_rows
from sysweave.validator.store.base import StoreError


class SinkError(StoreError):
    pass


class SinkUnavailable(SinkError):
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
    return u.hostname or "127.0.0.1", u.port or 9000, (u.path or "/").strip("/") or "sysweave"


class ClickHouseSink:
    def __init__(self, url: str, max_buffered_rows: int = 2_000_000, policy: RetryPolicy | None = None) -> None:
        from clickhouse_driver import Client, errors

        self.host, self.port, self.database = parse_url(url)
        self.policy = policy or RetryPolicy()
        self._errors = errors
        self._retryable: tuple[type[BaseException], ...] = (errors.NetworkError, errors.SocketTimeoutError, EOFError,
                                                            ConnectionError, OSError)
        self._client = Client(self.host, port=self.port, database=self.database, connect_timeout=3,
                              send_receive_timeout=30)
        self._admin = Client(self.host, port=self.port, connect_timeout=3)
        self._columns: dict[str, list[str]] = {}
        self._buffer: dict[str, list[Row]] = {}
        self.buffered = 0
        self.max_buffered_rows = max_buffered_rows
        self.dropped = 0
        self.inserted = 0
        self.retries = 0
        self.stop = threading.Event()

    def _call(self, fn: Callable[[], Any]) -> Any:
        def counted(_exc: BaseException) -> None:
            self.retries += 1

        try:
            return retry(self.policy, fn, self._retryable, self.stop, counted)
        except self._errors.ServerException as exc:
            raise SinkRejected(f"ClickHouse refused the request: {exc.message.splitlines()[0]}") from exc

    def migrate(self) -> list[ddl.Migration]:
        self._call(lambda: self._admin.execute(f"CREATE DATABASE IF NOT EXISTS {self.database}"))
        return self._call(lambda: ddl.migrate(self._client.execute))  # type: ignore[no-any-return]

    def execute(self, sql: str) -> list[tuple[Any, ...]]:
        return self._call(lambda: self._client.execute(sql))  # type: ignore[no-any-return]

    def columns(self, table: str) -> list[str]:
        if table not in self._columns:
            self._columns[table] = [r[0] for r in self.execute(f"DESCRIBE TABLE {table}")]
        return self._columns[table]

    def add_rows(self, table: str, rows: list[Row]) -> int:
        """Buffer rows; returns how many were dropped because the buffer is full (counted in ``dropped``)."""
        room = max(self.max_buffered_rows - self.buffered, 0)
        keep = rows[:room]
        lost = len(rows) - len(keep)
        self.dropped += lost
        self._buffer.setdefault(table, []).extend(keep)
        self.buffered += len(keep)
        return lost

    def add_trace(self, trace: UnifiedTrace, label: str = "", backend: str = "", exit_code: int = 0) -> int:
        return sum(self.add_rows(t, rows) for t, rows in trace_rows(trace, label, backend, exit_code).items())

    def flush(self) -> int:
        """Insert everything buffered, one columnar INSERT per table; returns rows written."""
        written = 0
        for table in list(self._buffer):
            rows = self._buffer[table]
            if not rows:
                continue
            cols = self.columns(table)
            data = [[r.get(c) for r in rows] for c in cols]
            sql = f"INSERT INTO {table} ({', '.join(cols)}) VALUES"

            def insert(sql: str = sql, data: list[list[Any]] = data) -> Any:
                return self._client.execute(sql, data, columnar=True)

            self._call(insert)
            written += len(rows)
            self.buffered -= len(rows)
            self._buffer[table] = []
        self.inserted += written
        return written

    def metrics(self) -> dict[str, int]:
        return {"inserted_rows": self.inserted, "dropped_rows": self.dropped, "buffered_rows": self.buffered,
                "retries": self.retries}

    def close(self) -> None:
        self.stop.set()
        self._client.disconnect()
        self._admin.disconnect()
