"""Trace history in ClickHouse: the embedded store (chdb, the default) behind one small interface.

Errors: ``sysweave.validator.store.base`` (StoreError and its tree).
"""

from __future__ import annotations

import importlib
import json
import os
import threading
from pathlib import Path
from typing import Any

from sysweave.schemas import ddl
from sysweave.schemas.events import UnifiedTrace
from sysweave.schemas.rows import Row, trace_rows
from sysweave.validator.store.base import QueryError, StoreUnavailable

DATABASE = "sysweave"



def default_store_path() -> Path:
    """$SYSWEAVE_STORE, else $XDG_DATA_HOME/sysweave/store, else ~/.local/share/sysweave/store."""
    if os.environ.get("SYSWEAVE_STORE"):
        return Path(os.environ["SYSWEAVE_STORE"])
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(base) / "sysweave" / "store"


def _lit(v: Any) -> Any:
    """JSON-safe form: bytes and str both travel as hex and are unhex()ed in SQL (binary-safe)."""
    if isinstance(v, bytes):
        return v.hex()
    if isinstance(v, str):
        return v.encode("utf-8", "surrogateescape").hex()
    if isinstance(v, list):
        return [_lit(x) for x in v]
    return v


class EmbeddedStore:
    """chdb session on a directory. One process at a time (chdb's own lock on the path)."""

    _lock = threading.Lock()  # chdb allows one session per process

    def __init__(self, path: Path | str) -> None:
        try:
            session: Any = importlib.import_module("chdb.session")
        except ImportError as exc:
            raise StoreUnavailable("chdb is not installed: pip install chdb (or run 'make setup')") from exc
        self.path = Path(path)
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            self._s: Any = session.Session(str(self.path))
            self._s.query(f"CREATE DATABASE IF NOT EXISTS {DATABASE}")
            self._s.query(f"USE {DATABASE}")
        except Exception as exc:
            raise StoreUnavailable(f"cannot open the trace store at {self.path}: {exc}; pass --store PATH or --no-store") from exc
        self._columns: dict[str, list[tuple[str, str]]] = {}
        ddl.migrate(self.execute)

    def execute(self, sql: str) -> list[list[Any]]:
        try:
            res = self._s.query(sql, "JSONCompact")
        except Exception as exc:
            raise QueryError(str(exc).strip()) from exc
        raw = res.bytes() if res is not None else b""
        return json.loads(raw)["data"] if raw.strip() else []

    def query(self, sql: str, fmt: str = "JSON") -> bytes:
        try:
            out: bytes = self._s.query(sql, fmt).bytes()
            return out
        except Exception as exc:
            raise QueryError(f"{str(exc).strip()}\n(tables: SHOW TABLES; named queries: sysweave query --list)") from exc

    def columns(self, table: str) -> list[tuple[str, str]]:
        if table not in self._columns:
            self._columns[table] = [(r[0], r[1]) for r in self.execute(f"DESCRIBE TABLE {table}")]
        return self._columns[table]

    def insert(self, table: str, rows: list[Row]) -> None:
        if not rows:
            return
        cols = self.columns(table)
        structure = ", ".join(f"{n} {'Array(String)' if 'Array(String)' in t else ('String' if 'String' in t else t)}"
                              for n, t in cols)
        select = ", ".join(
            (f"arrayMap(x -> unhex(x), {n})" if "Array(String)" in t else f"unhex({n})" if "String" in t else n)
            for n, t in cols)
        data = "\n".join(json.dumps({n: _lit(r.get(n)) for n, _ in cols}) for r in rows)
        self.execute(f"INSERT INTO {table} SELECT {select} FROM format(JSONEachRow, '{structure}', $$\n{data}\n$$)")

    def store_trace(self, trace: UnifiedTrace, label: str = "", backend: str = "", exit_code: int = 0) -> None:
        for table, rows in trace_rows(trace, label, backend, exit_code).items():
            self.insert(table, rows)

    def close(self) -> None:
        self._s.close()
