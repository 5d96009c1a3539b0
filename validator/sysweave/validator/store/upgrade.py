"""Convert a store of the earlier layout (a chdb database directory) into parts, in place.

``sysweave store upgrade --store PATH`` opens the old database with chdb (its own migrations first, so a store of
any earlier schema reads), writes every table's stored columns (``FINAL``: one row per key) as one merged part of
Parquet files, then removes the database's files. Interrupted before the end, the directory still reads as the
old layout (no FORMAT file yet) and the upgrade starts over; nothing is lost. The rows are counted on both sides
before the old files go.

chdb runs one engine per process: call this before any other store use in the process (the CLI command does).
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sysweave.schemas import ddl
from sysweave.schemas.rows import TABLES, stored
from sysweave.validator.store.base import StoreError, StoreUnavailable, quote
from sysweave.validator.store.parts import FORMAT, PartWriter, StoreLayout, TraceEntry

__all__ = ["UpgradeResult", "upgrade"]

_OLD_DATABASE = "sysweave"
_KEEP = {"parts", "tmp", "FORMAT"}


@dataclass(frozen=True, slots=True)
class UpgradeResult:
    traces: int
    rows: int
    bytes_before: int
    bytes_after: int


def _du(path: Path) -> int:
    return sum(os.path.getsize(os.path.join(d, f)) for d, _s, files in os.walk(path) for f in files
               if os.path.isfile(os.path.join(d, f)))


def upgrade(path: Path | str) -> UpgradeResult:
    """Convert the chdb store at ``path`` (see the module doc). Raises StoreError when it is not one."""
    root = Path(path).absolute()
    if not StoreLayout.is_chdb_store(root):
        raise StoreError(f"{root} is not a store of the earlier (chdb) layout: nothing to upgrade")
    before = _du(root)
    try:
        session: Any = importlib.import_module("chdb.session").Session(str(root))
    except Exception as exc:
        raise StoreUnavailable(f"cannot open the old store at {root}: {str(exc).strip().splitlines()[0]} "
                               "(is another sysweave command using it?)") from exc
    try:
        session.query(f"CREATE DATABASE IF NOT EXISTS {_OLD_DATABASE}")
        session.query(f"USE {_OLD_DATABASE}")
        ddl.migrate(lambda sql: _rows(session, sql))
        for leftover in ("parts", "tmp"):  # an earlier, interrupted upgrade
            shutil.rmtree(root / leftover, ignore_errors=True)
        (root / "parts").mkdir()
        (root / "tmp").mkdir()
        w = PartWriter(root / "tmp", root / "parts", "merged")
        for table in TABLES:
            n = _copy(session, table, str(w.tmp / f"{table}.parquet"))
            if n:
                w.manifest.rows[table] = n
        traces = _rows(session, "SELECT trace_id, label, start_wall_ns, processes, events, backend, exit_code, version "
                                "FROM traces FINAL")
        w.manifest.traces = [TraceEntry(str(r[0]), str(r[1]), int(r[2]), int(r[3]), int(r[4]), str(r[5]), int(r[6]),
                                        int(r[7])) for r in traces]
        w.manifest.merged = True
        w.commit()
    finally:
        session.close()
    for entry in os.listdir(root):
        if entry not in _KEEP:
            target = root / entry
            shutil.rmtree(target) if target.is_dir() and not target.is_symlink() else target.unlink()
    (root / "FORMAT").write_text(FORMAT + "\n")
    return UpgradeResult(len(w.manifest.traces), sum(w.manifest.rows.values()), before, _du(root))


def _rows(session: Any, sql: str) -> list[tuple[Any, ...]]:
    res = session.query(sql, "JSONCompact")
    text = res.bytes().decode("utf-8", "replace") if res is not None else ""
    return [tuple(r) for r in json.loads(text)["data"]] if text.strip() else []


def _copy(session: Any, table: str, out: str) -> int:
    """``table``'s stored columns, one row per key, into a Parquet file; returns the rows (0: no file)."""
    n = int(session.query(f"SELECT count() FROM {table} FINAL", "CSV").bytes().decode().strip() or 0)
    if not n:
        return 0
    cols = stored(table)
    structure = quote(", ".join(f"{c.name} {c.type}" for c in cols))
    session.query(f"INSERT INTO FUNCTION file({quote(out)}, Parquet, {structure}) "
                  f"SELECT {', '.join(c.name for c in cols)} FROM {table} FINAL ORDER BY {cols[0].name} "
                  f"SETTINGS output_format_parquet_compression_method = 'zstd'")
    written = int(session.query(f"SELECT count() FROM file({quote(out)}, Parquet, {structure})", "CSV").bytes().decode())
    if written != n:
        raise StoreError(f"upgrade: {table} has {n} rows, the copy {written}; the old store is left as it was")
    return n

