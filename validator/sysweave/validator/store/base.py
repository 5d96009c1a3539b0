"""What every trace store shares: the errors, and the :class:`TraceStore` interface.

Two implementations: ``embedded.EmbeddedStore`` (parts on a directory, read with chdb; the default) and
``server.ServerStore`` (a ClickHouse server over the native protocol); ``open_store`` in this package picks
one from a path or a ``clickhouse://HOST:PORT/DB`` URL. Both use the one column map
(``sysweave.schemas.rows``) and the one set of migrations (``sysweave.schemas.ddl``).

Errors (under ``ValidatorError``, see ``sysweave.schemas.errors``)::

    StoreError
      ├── StoreUnavailable   -- the store cannot be opened or reached (path not writable, server down)
      ├── QueryError         -- the user's SQL failed; the message is ClickHouse's, plus what to do
      ├── TraceNotFound      -- no trace with that id or label
      │     └── AmbiguousTrace  -- a label names several traces (the message lists their ids)
      └── SinkError          -- writes to the server failed
            ├── SinkUnavailable  -- not reachable before the retry deadline (also a StoreUnavailable)
            └── SinkRejected     -- the server refused the data itself (schema mismatch): retrying cannot help
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol, runtime_checkable

from sysweave.schemas.ddl import Migration
from sysweave.schemas.errors import ValidatorError
from sysweave.schemas.events import UnifiedTrace
from sysweave.schemas.rows import Row

__all__ = [
    "FORMATS",
    "SQL_HINT",
    "AmbiguousTrace",
    "OutputFormat",
    "QueryError",
    "SinkError",
    "SinkRejected",
    "SinkUnavailable",
    "StoreError",
    "StoreUnavailable",
    "TraceNotFound",
    "TraceStore",
    "TraceSummary",
    "quote",
    "server_message",
    "store_label",
]


class StoreError(ValidatorError):
    pass


class StoreUnavailable(StoreError):
    pass


class QueryError(StoreError):
    pass


class TraceNotFound(StoreError, LookupError):
    pass


class AmbiguousTrace(TraceNotFound):
    pass


class SinkError(StoreError):
    pass


class SinkUnavailable(SinkError, StoreUnavailable):
    pass


class SinkRejected(SinkError):
    pass


SQL_HINT = ("check the SQL: SHOW TABLES lists the tables, DESCRIBE TABLE name their columns, "
            "sysweave query --list the named queries")
OutputFormat = Literal["table", "json", "csv", "tsv"]
FORMATS: tuple[OutputFormat, ...] = ("table", "json", "csv", "tsv")


@dataclass(frozen=True, slots=True)
class TraceSummary:
    trace_id: str
    label: str
    start_wall_ns: int
    processes: int
    events: int
    backend: str
    exit_code: int


def quote(s: str) -> str:
    """A ClickHouse string literal (backslash and quote escaped; valid on 18.16 and current servers)."""
    return "'" + s.replace("\\", "\\\\").replace("'", "\\'") + "'"


@runtime_checkable
class TraceStore(Protocol):
    """The operations the CLI and the validator use on either store. Writes are synchronous: when
    ``insert``/``store_trace`` return, the rows are queryable."""

    description: str  # where the store is, for messages: "embedded store at PATH", "ClickHouse 18.16.1 at HOST:PORT/DB"

    def migrate(self) -> list[Migration]:
        """Apply the DDL migrations not yet applied (idempotent); return those applied."""
        ...

    def server_version(self) -> str: ...

    def insert(self, table: str, rows: Sequence[Row]) -> int:
        """Insert rows (dicts keyed by column, ``sysweave.schemas.rows``) without SQL text; any size."""
        ...

    def store_trace(self, trace: UnifiedTrace, label: str | None = None, backend: str = "", exit_code: int = 0) -> None:
        """Every table's rows of ``trace``; ``label`` defaults to ``trace.label``."""
        ...

    def execute(self, sql: str) -> list[tuple[Any, ...]]:
        """Run one statement; rows with ClickHouse Strings as ``str``. Raises QueryError on bad SQL."""
        ...

    def fetch_raw(self, sql: str) -> list[tuple[Any, ...]]:
        """Like ``execute`` but Strings and FixedStrings as ``bytes``, exactly as stored (the reader's form)."""
        ...

    def query(self, sql: str, fmt: OutputFormat = "table") -> bytes:
        """Run user SQL and return it formatted (table/json/csv/tsv). Raises QueryError with what to do."""
        ...

    def load_trace(self, ref: str) -> UnifiedTrace:
        """A stored trace by id (32 hex digits) or label. Raises TraceNotFound / AmbiguousTrace."""
        ...

    def list_traces(self, limit: int = 20, label: str | None = None) -> list[TraceSummary]: ...

    def close(self) -> None: ...


def server_message(text: str) -> str:
    """The part of a ClickHouse exception a person needs: first line, no stack trace, no list of every token
    the parser expected."""
    first = text.strip().splitlines()[0] if text.strip() else "unknown error"
    for cut in (". Stack trace:", " Stack trace:", ". Expected one of:"):
        first = first.split(cut, 1)[0]
    return first.rstrip(".") + "."


def store_label(trace: UnifiedTrace, label: str | None) -> str:
    """The label a trace is stored under: the explicit one, else the trace's own (``UnifiedTrace.label``)."""
    return label if label is not None else trace.label
