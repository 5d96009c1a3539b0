"""The embedded trace store: chdb (in-process ClickHouse) on a directory, the default of every command.

Inserts never go through SQL text: rows become Arrow columns (``schemas.columns.columnar``) streamed into
``INSERT INTO t (cols)`` with chdb's ``send_insert`` in ArrowStream format, in chunks of ``CHUNK_ROWS``
rows, so a trace of any size stores (the former ``format(JSONEachRow, $$...$$)`` text hit "Max query size
exceeded" at ~1,200 syscalls). Reads come back as Arrow tables with Strings as bytes.

Errors: ``sysweave.validator.store.base`` (StoreError and its tree).
"""

from __future__ import annotations

import importlib
import io
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sysweave.schemas import ddl
from sysweave.schemas.columns import columnar, trace_columns
from sysweave.schemas.events import UnifiedTrace
from sysweave.schemas.rows import TABLES, Column, Row
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

__all__ = ["CHUNK_ROWS", "DATABASE", "EmbeddedStore", "arrow_type", "default_store_path"]

DATABASE = "sysweave"
CHUNK_ROWS = 100_000  # rows per Arrow stream: bounds the memory an insert holds at once
_FORMATS: dict[str, str] = {"table": "PrettyCompactMonoBlock", "json": "JSON", "csv": "CSVWithNames", "tsv": "TSVWithNames"}


def default_store_path() -> Path:
    """$SYSWEAVE_STORE, else $XDG_DATA_HOME/sysweave/store, else ~/.local/share/sysweave/store."""
    if os.environ.get("SYSWEAVE_STORE"):
        return Path(os.environ["SYSWEAVE_STORE"])
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(base) / "sysweave" / "store"


def arrow_type(pa: Any, ch_type: str) -> Any:
    """The Arrow type ClickHouse reads into ``ch_type`` (String as binary: any bytes, no UTF-8 check)."""
    if ch_type.startswith("Nullable("):
        return arrow_type(pa, ch_type[9:-1])
    if ch_type.startswith("Array("):
        return pa.list_(arrow_type(pa, ch_type[6:-1]))
    if ch_type.startswith("FixedString("):
        return pa.binary(int(ch_type[12:-1]))
    simple = {"String": pa.binary(), "UInt8": pa.uint8(), "UInt16": pa.uint16(), "UInt32": pa.uint32(),
              "UInt64": pa.uint64(), "Int8": pa.int8(), "Int16": pa.int16(), "Int32": pa.int32(), "Int64": pa.int64(),
              "Float32": pa.float32(), "Float64": pa.float64()}
    if ch_type not in simple:
        raise TypeError(f"no Arrow mapping for ClickHouse type {ch_type} (add it to arrow_type)")
    return simple[ch_type]


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    for prefix in ("Streaming insert append failed: ", "Streaming insert finish failed: "):
        text = text.replace(prefix, "")
    return server_message(text) if text else type(exc).__name__


class EmbeddedStore:
    """chdb session on a directory. One process at a time (chdb's own lock on the path)."""

    _lock = threading.Lock()  # one statement at a time per process (a streaming insert holds the connection)

    def __init__(self, path: Path | str, migrate: bool = True) -> None:
        try:
            session: Any = importlib.import_module("chdb.session")
            self._pa: Any = importlib.import_module("pyarrow")
            self._ipc: Any = importlib.import_module("pyarrow.ipc")
        except ImportError as exc:
            raise StoreUnavailable("chdb (with pyarrow) is not installed: pip install chdb (or run 'make setup')") from exc
        self.path = Path(path)
        self.description = f"embedded store at {self.path}"
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            self._s: Any = session.Session(str(self.path))
            self._s.query(f"CREATE DATABASE IF NOT EXISTS {DATABASE}")
            self._s.query(f"USE {DATABASE}")
            self._s.query("SET output_format_arrow_string_as_string = 0")  # Strings as binary: exact bytes
        except Exception as exc:
            raise StoreUnavailable(
                f"cannot open the trace store at {self.path}: {_first_line(exc)}; chdb lets one process at a time "
                "open a store directory: wait for the other sysweave command to finish, or use another directory "
                "(--store PATH, writable)") from exc
        if migrate:
            self.migrate()

    # --- reads ---------------------------------------------------------------------------------------------

    def _arrow(self, sql: str) -> Any:
        try:
            with self._lock:
                return self._s.query(sql, "ArrowTable")
        except Exception as exc:
            raise QueryError(f"{_first_line(exc)}\n({SQL_HINT})") from exc

    def fetch_raw(self, sql: str) -> list[tuple[Any, ...]]:
        table = self._arrow(sql)
        if table.num_columns == 0:
            return []
        return list(zip(*(col.to_pylist() for col in table.columns)))

    def execute(self, sql: str) -> list[tuple[Any, ...]]:
        table = self._arrow(sql)
        if table.num_columns == 0:
            return []
        cols = []
        for field, col in zip(table.schema, table.columns):
            values = col.to_pylist()
            if self._pa.types.is_binary(field.type) or self._pa.types.is_fixed_size_binary(field.type):
                values = [v.decode("utf-8", "surrogateescape") if v is not None else None for v in values]
            cols.append(values)
        return list(zip(*cols))

    def query(self, sql: str, fmt: OutputFormat = "table") -> bytes:
        try:
            with self._lock:
                res = self._s.query(sql, _FORMATS[fmt])
            out: bytes = res.bytes() if res is not None else b""
            return out
        except Exception as exc:
            raise QueryError(f"{_first_line(exc)}\n({SQL_HINT})") from exc

    def server_version(self) -> str:
        return str(self.execute("SELECT version()")[0][0])

    # --- writes --------------------------------------------------------------------------------------------

    def migrate(self) -> list[ddl.Migration]:
        return ddl.migrate(self.execute)

    def insert(self, table: str, rows: Sequence[Row]) -> int:
        if table not in TABLES:
            raise StoreError(f"no column map for table {table!r} (sysweave.schemas.rows.TABLES)")
        for start in range(0, len(rows), CHUNK_ROWS):
            self._insert_chunk(table, rows[start:start + CHUNK_ROWS])
        return len(rows)

    def _insert_chunk(self, table: str, rows: Sequence[Row]) -> None:
        self._insert_columns(table, columnar(table, rows))

    def _insert_columns(self, table: str, cols: Sequence[tuple[Column, Any]]) -> None:
        """One chunk of insert columns (``rows.stored`` order) as one Arrow stream."""
        pa = self._pa
        rows = cols[0][1] if cols else []
        arrays = [pa.array(values, type=arrow_type(pa, c.type)) for c, values in cols]
        batch = pa.record_batch(arrays, names=[c.name for c, _ in cols])
        buf = io.BytesIO()
        with self._ipc.new_stream(buf, batch.schema) as w:
            w.write_batch(batch)
        try:
            with self._lock, self._s.send_insert(f"INSERT INTO {table} ({', '.join(c.name for c, _ in cols)})",
                                                 "ArrowStream") as ins:
                ins.append(buf.getvalue())
                ins.finish()
        except Exception as exc:
            raise StoreError(f"the embedded store refused {len(rows)} rows for {table}: {_first_line(exc)}; "
                             "if the schema changed, run the migration (any sysweave command opening the store does)") from exc

    def store_trace(self, trace: UnifiedTrace, label: str | None = None, backend: str = "", exit_code: int = 0) -> None:
        for table, cols in trace_columns(trace, store_label(trace, label), backend, exit_code, arrays=True).items():
            n = len(cols[0][1]) if cols else 0
            for start in range(0, n, CHUNK_ROWS):
                self._insert_columns(table, [(c, v[start:start + CHUNK_ROWS]) for c, v in cols])

    # --- traces --------------------------------------------------------------------------------------------

    def load_trace(self, ref: str) -> UnifiedTrace:
        return reader.load_trace(self.fetch_raw, ref)

    def list_traces(self, limit: int = 20, label: str | None = None) -> list[TraceSummary]:
        return reader.list_traces(self.fetch_raw, limit, label)

    def close(self) -> None:
        self._s.close()
