"""The embedded trace store, the default of every command: immutable parts on a directory, read with chdb.

Writes (``store_trace``, ``insert``) put one new part (``parts``) of Native files: the trace's stored columns
(``schemas.columns``, the one trace-to-columns path) in blocks of ``CHUNK_ROWS``, built in STORE/tmp and renamed
into place. No chdb, pyarrow or numpy is imported to write, nothing existing is read: a write costs the size
of what it writes, whatever the history, and several processes may write at once.

Reads (``query``, ``execute``, ``load_trace``) start an in-memory chdb session in which each table the SQL names
is a view over the part files (``views``). Traces are listed and found by id or label from the parts'
manifests, and a trace is read from its own part only.

Errors: ``sysweave.validator.store.base`` (StoreError and its tree).
"""

from __future__ import annotations

import importlib
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sysweave.schemas import ddl
from sysweave.schemas.columns import columnar, iter_trace_columns
from sysweave.schemas.events import UnifiedTrace
from sysweave.schemas.rows import TABLES, Row
from sysweave.validator.store import autocompact
from sysweave.validator.store.base import (
    SQL_HINT,
    OutputFormat,
    QueryError,
    StoreError,
    TraceNotFound,
    TraceSummary,
    quote,
    server_message,
    store_label,
)
from sysweave.validator.store.parts import Part, StoreLayout, TraceEntry
from sysweave.validator.store.paths import default_store_path

__all__ = ["CHUNK_ROWS", "EmbeddedStore", "default_store_path"]

CHUNK_ROWS = 100_000  # rows per Native block: bounds the memory a write (and a reader of the block) holds
_FORMATS: dict[str, str] = {"table": "PrettyCompactMonoBlock", "json": "JSON", "csv": "CSVWithNames", "tsv": "TSVWithNames"}
_HEX32 = re.compile(r"^[0-9a-fA-F]{32}$")
_WRITES = re.compile(r"^\s*(INSERT|ALTER|CREATE|DROP|TRUNCATE|OPTIMIZE|RENAME|DELETE|UPDATE|ATTACH|DETACH)\b", re.I)
_NOT_FOUND = "sysweave query --name traces lists the stored ones"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return server_message(text) if text else type(exc).__name__


def _vanished(error: str) -> bool:
    """Whether chdb failed because a file it had listed was gone (a part merged or pruned meanwhile)."""
    return any(s in error for s in ("FILE_DOESNT_EXIST", "doesn't exist", "No such file", "CANNOT_OPEN_FILE"))


def _summary(t: TraceEntry) -> TraceSummary:
    return TraceSummary(t.trace_id, t.label, t.start_wall_ns, t.processes, t.events, t.backend, t.exit_code)


class EmbeddedStore:
    """Parts on a directory (``parts.StoreLayout``); chdb (in memory) only to read."""

    def __init__(self, path: Path | str, migrate: bool = True, retention_days: float | None = None) -> None:
        """``retention_days``: after each write, remove traces older than that (None: $SYSWEAVE_RETENTION_DAYS)."""
        self.layout = StoreLayout(path)
        self.retention_days = retention_days
        self.path = self.layout.root
        self.description = f"embedded store at {self.path}"
        _ = migrate  # nothing to migrate: the views are defined per session from the one column map

    # --- writes --------------------------------------------------------------------------------------------

    def migrate(self) -> list[ddl.Migration]:
        """Nothing to apply: parts hold the stored columns of the current column map; views are per session."""
        return []

    def insert(self, table: str, rows: Sequence[Row]) -> int:
        if table not in TABLES:
            raise StoreError(f"no column map for table {table!r} (sysweave.schemas.rows.TABLES)")
        if not rows:
            return 0
        w = self.layout.writer("rows")
        try:
            for start in range(0, len(rows), CHUNK_ROWS):
                w.add(table, columnar(table, rows[start:start + CHUNK_ROWS]))
            w.commit()
        except BaseException:
            w.abort()
            raise
        autocompact.maybe_compact_in_background(self.layout, self.retention_days)
        return len(rows)

    def store_trace(self, trace: UnifiedTrace, label: str | None = None, backend: str = "", exit_code: int = 0) -> None:
        """The trace as one new part; an earlier part holding only this trace (stored again) is replaced."""
        tid = trace.trace_id.hex()
        earlier = [p for p in self.layout.list_parts() if not p.manifest.merged
                   and [t.trace_id for t in p.manifest.traces] == [tid]] if self._stored(tid) else []
        w = self.layout.writer(tid)
        try:
            for table, cols in iter_trace_columns(trace, store_label(trace, label), backend, exit_code,
                                                  chunk_rows=CHUNK_ROWS):
                if table not in TABLES:
                    raise StoreError(f"no column map for table {table!r} (sysweave.schemas.rows.TABLES)")
                w.add(table, cols)
            w.commit()
        except OSError as exc:
            w.abort()
            raise StoreError(f"cannot write to the trace store at {self.path}: {exc.strerror}") from exc
        except BaseException:
            w.abort()
            raise
        self.layout.remove(earlier)
        autocompact.maybe_compact_in_background(self.layout, self.retention_days)

    def _stored(self, trace_id: str) -> bool:
        """Whether a part names this trace id in its directory name (a cheap check: no manifest read)."""
        return any(f"-{trace_id}-" in name for name in os.listdir(self.layout.parts))

    # --- reads ---------------------------------------------------------------------------------------------

    def _run(self, sql: str, fmt: str) -> Any:
        from sysweave.validator.store import chdb_session as session  # reads only: a write imports none of these
        from sysweave.validator.store import views

        if _WRITES.match(sql):
            raise QueryError(f"the embedded store at {self.path} answers SQL reads only (SELECT, SHOW, DESCRIBE, "
                             "EXISTS): traces are written by sysweave trace/validate, removed by sysweave store prune")
        with session.LOCK:
            s = session.shared_session()
            parts_dir = str(self.layout.parts)
            for name in views.views_for(sql):
                if session.DEFINED.get(name) != parts_dir:  # undefined, or another store's view in this process
                    s.query(views.view_sql(name, parts_dir).replace("CREATE VIEW", "CREATE OR REPLACE VIEW", 1))
                    session.DEFINED[name] = parts_dir
            try:
                return s.query(sql, fmt)
            except Exception as exc:
                if _vanished(str(exc)):
                    try:  # a part was removed (compaction, prune) while the statement listed it: once more
                        return s.query(sql, fmt)
                    except Exception as again:
                        exc = again
                raise QueryError(f"{_first_line(exc)}\n({SQL_HINT})") from exc

    def fetch_raw(self, sql: str) -> list[tuple[Any, ...]]:
        table = self._run(sql, "ArrowTable")
        if table.num_columns == 0:
            return []
        return list(zip(*(col.to_pylist() for col in table.columns)))

    def execute(self, sql: str) -> list[tuple[Any, ...]]:
        table = self._run(sql, "ArrowTable")
        if table.num_columns == 0:
            return []
        pa: Any = importlib.import_module("pyarrow")
        cols = []
        for field, col in zip(table.schema, table.columns):
            values = col.to_pylist()
            if pa.types.is_binary(field.type) or pa.types.is_fixed_size_binary(field.type):
                values = [v.decode("utf-8", "surrogateescape") if v is not None else None for v in values]
            cols.append(values)
        return list(zip(*cols))

    def query(self, sql: str, fmt: OutputFormat = "table") -> bytes:
        res = self._run(sql, _FORMATS[fmt])
        out: bytes = res.bytes() if res is not None else b""
        return out

    def server_version(self) -> str:
        from sysweave.validator.store import chdb_session as session

        return str(session.shared_session().query("SELECT version()", "CSV").bytes().decode().strip().strip('"'))

    # --- traces --------------------------------------------------------------------------------------------

    def _entries(self) -> list[tuple[Part, TraceEntry]]:
        """Every stored trace with the part holding it: for a trace stored twice, the latest part."""
        latest: dict[str, tuple[Part, TraceEntry]] = {}
        for part, t in self.layout.traces():
            latest[t.trace_id] = (part, t)  # parts come oldest first
        return list(latest.values())

    def list_traces(self, limit: int = 20, label: str | None = None) -> list[TraceSummary]:
        found = [t for _p, t in self._entries() if label is None or t.label == label]
        found.sort(key=lambda t: t.start_wall_ns, reverse=True)
        return [_summary(t) for t in found[:limit]]

    def load_trace(self, ref: str) -> UnifiedTrace:
        try:
            return self._load(ref.strip())
        except QueryError as exc:
            if not _vanished(str(exc)):
                raise
            return self._load(ref.strip())  # its part was merged or pruned meanwhile: find it again

    def _load(self, ref: str) -> UnifiedTrace:
        from sysweave.validator.store import reader

        entries = self._entries()
        by_id = {t.trace_id: p for p, t in entries}
        if _HEX32.match(ref) and ref.lower() in by_id:
            return self._read(ref.lower(), by_id[ref.lower()])
        named = sorted((t for _p, t in entries if t.label == ref), key=lambda t: t.start_wall_ns, reverse=True)
        if len(named) > 1:
            raise reader.ambiguous(ref, [_summary(t) for t in named])
        if named:
            return self._read(named[0].trace_id, by_id[named[0].trace_id])
        if _HEX32.match(ref) and self.execute(f"SELECT count() FROM processes WHERE trace_id = {quote(ref.lower())}")[0][0]:
            return reader.load_trace(self.fetch_raw, ref)  # rows without a traces row (inserted table by table)
        raise TraceNotFound(f"no trace with id or label {ref!r} in this store ({_NOT_FOUND})")

    def _read(self, trace_id: str, part: Part) -> UnifiedTrace:
        """A trace from the one part that holds it (no other part's files are opened)."""
        from sysweave.validator.store import reader, views

        def select(table: str, where: str) -> list[tuple[Any, ...]]:
            path = part.file(table)
            if path is None:
                return []
            fmt = "Native" if path.suffix == ".native" else "Parquet"
            cols = ", ".join(c.name for c in TABLES[table])
            return self.fetch_raw(f"SELECT {cols} FROM ({views.source(table, [(str(path), fmt)])}) WHERE {where}")

        return reader.read_trace(trace_id, select)

    def close(self) -> None:
        """Close the process's chdb session, if open (chdb allows one engine per process: a chdb session on a
        directory, e.g. ``store upgrade`` reading an old store, can start only after it). Another store object
        still in use opens a new one when it next reads."""
        chdb_session = sys.modules.get("sysweave.validator.store.chdb_session")
        if chdb_session is not None:  # (a store that only wrote never started one)
            chdb_session.close_session()
