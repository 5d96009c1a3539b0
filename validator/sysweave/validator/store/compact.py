"""Keeping the embedded store small and quick to read: merge parts, prune old traces, say what it holds.

``compact``: the parts commands wrote (one per trace or report) become one merged part of Parquet files (ZSTD,
sorted by trace), written by chdb from the parts' own files; the inputs are removed once it is in place. A trace
stored twice keeps its latest part's rows. ``prune``: traces older than a number of days, or all but the newest
N, are removed: whole parts where every trace goes, a merged part rewritten without them otherwise.
``autocompact.maybe_compact_in_background`` starts ``compact`` (``python -m``, this module) as a detached
low-priority process once enough unmerged parts have accumulated, so no command waits for a merge. One compaction or prune
at a time (a lock file); writers never wait for either.

Example: ``compact(StoreLayout(path))`` -> ``CompactResult(parts_in=412, bytes_in=..., bytes_out=...)``.
"""

from __future__ import annotations

import fcntl
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sysweave.schemas.rows import TABLES, stored
from sysweave.validator.store.autocompact import retention_days
from sysweave.validator.store.base import StoreError, quote
from sysweave.validator.store.chdb_session import shared_session
from sysweave.validator.store.parts import Manifest, Part, StoreLayout, TraceEntry

__all__ = ["CompactResult", "StoreInfo", "compact", "info", "merge_parts", "prune"]
ROW_GROUP_ROWS = 65_536  # Parquet row group: a trace's rows are found by the groups' trace_id ranges
_SETTINGS = (f"SETTINGS output_format_parquet_compression_method = 'zstd', "
             f"output_format_parquet_row_group_size = {ROW_GROUP_ROWS}")


@dataclass(frozen=True, slots=True)
class CompactResult:
    parts_in: int
    bytes_in: int
    bytes_out: int
    seconds: float


@dataclass(frozen=True, slots=True)
class StoreInfo:
    path: str
    traces: int
    validations: int
    spans: int
    parts: int
    merged_parts: int
    bytes: int
    oldest_wall_ns: int  # the earliest trace start (0: no trace)
    newest_wall_ns: int


def info(layout: StoreLayout) -> StoreInfo:
    """What the store holds, from the parts' manifests alone (no chdb)."""
    parts = layout.list_parts()
    traces = {t.trace_id: t for p in parts for t in p.manifest.traces}
    starts = [t.start_wall_ns for t in traces.values()]
    return StoreInfo(str(layout.root), len(traces), sum(p.manifest.rows.get("validation_results", 0) for p in parts),
                     sum(p.manifest.rows.get("syscall_spans", 0) for p in parts), len(parts),
                     sum(1 for p in parts if p.manifest.merged), sum(p.manifest.bytes for p in parts),
                     min(starts, default=0), max(starts, default=0))


@contextmanager
def _exclusive(layout: StoreLayout, wait: bool) -> Iterator[bool]:
    """Hold the store's maintenance lock (yields False, without it, when ``wait`` is off and it is taken)."""
    with open(layout.root / "maintenance.lock", "a+b") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _files(layout: StoreLayout, parts: Sequence[Part], table: str) -> list[tuple[str, str]]:
    """(file() pattern, format) covering ``table``'s files in ``parts`` (one brace list per format)."""
    out = []
    root = str(layout.parts)
    for ext, fmt in (("native", "Native"), ("parquet", "Parquet")):
        names = [p.name for p in parts if (p.path / f"{table}.{ext}").exists()]
        if names:
            out.append((f"{root}/{{{','.join(names)}}}/{table}.{ext}" if len(names) > 1
                        else f"{root}/{names[0]}/{table}.{ext}", fmt))
    return out


def merge_parts(layout: StoreLayout, parts: Sequence[Part], keep: Callable[[TraceEntry], bool] = lambda _t: True,
                keep_validations_from_ns: int = 0) -> Manifest | None:
    """Write one merged part of ``parts``' rows (for each trace, only its latest part's rows; only traces ``keep``
    accepts) and remove ``parts``. Returns the new part's manifest (None: nothing was left to keep)."""
    latest: dict[str, tuple[Part, TraceEntry]] = {}
    for part in parts:  # oldest first: a later part's entry wins
        for t in part.manifest.traces:
            latest[t.trace_id] = (part, t)
    entries = [t for _p, t in latest.values() if keep(t)]
    wanted = {(p.name, t.trace_id) for p, t in latest.values() if keep(t)}
    dropped = {(p.name, t.trace_id) for p in parts for t in p.manifest.traces} - wanted
    s = shared_session()
    w = layout.writer("merged")
    try:
        for table in TABLES:
            w.manifest.rows[table] = _merge_table(s, layout, parts, table, str(w.tmp / f"{table}.parquet"),
                                                  _condition(table, dropped, keep_validations_from_ns))
        w.manifest.rows = {t: n for t, n in w.manifest.rows.items() if n}
        for table in TABLES:
            if table not in w.manifest.rows and (w.tmp / f"{table}.parquet").exists():
                os.unlink(w.tmp / f"{table}.parquet")
        w.manifest.traces, w.manifest.merged = sorted(entries, key=lambda t: t.start_wall_ns), True
        if not w.manifest.rows:
            w.abort()
            layout.remove(parts)
            return None
        w.commit()
    except BaseException:
        w.abort()
        raise
    layout.remove(parts)
    return w.manifest


def _condition(table: str, dropped: set[tuple[str, str]], validations_from: int) -> str:
    """The WHERE that drops, of ``table``'s rows, those of the (part, trace) pairs in ``dropped`` (rows of traces
    no manifest names stay: they were inserted table by table)."""
    if table == "validation_results":
        return f"created_wall_ns >= {int(validations_from)}" if validations_from else ""
    if not dropped:
        return ""
    pairs = ", ".join(f"({quote(p)}, {quote(t)})" for p, t in sorted(dropped))
    return f"(splitByChar('/', _path)[-2], trace_id) NOT IN ({pairs})"


def _merge_table(s: Any, layout: StoreLayout, parts: Sequence[Part], table: str, out: str, where: str) -> int:
    files = _files(layout, parts, table)
    if not files:
        return 0
    cols = stored(table)
    names = ", ".join(c.name for c in cols)
    structure = quote(", ".join(f"{c.name} {c.type}" for c in cols))
    union = " UNION ALL ".join(f"SELECT {names}, _path FROM file({quote(p)}, {fmt}, {structure})" for p, fmt in files)
    order = "trace_id" if any(c.name == "trace_id" for c in cols) else cols[0].name
    sql = (f"INSERT INTO FUNCTION file({quote(out)}, Parquet, {structure}) SELECT {names} FROM ({union})"
           f"{' WHERE ' + where if where else ''} ORDER BY {order} {_SETTINGS}")
    try:
        s.query(sql)
        n = s.query(f"SELECT count() FROM file({quote(out)}, Parquet, {structure})", "CSV").bytes()
    except Exception as exc:
        raise StoreError(f"merging {table} failed: {str(exc).strip().splitlines()[0]}") from exc
    return int(n.decode().strip() or 0)


def compact(layout: StoreLayout, full: bool = False, wait: bool = True, days: float | None = None) -> CompactResult | None:
    """Merge the unmerged parts (``full``: every part) into one, without traces older than ``days`` (None:
    $SYSWEAVE_RETENTION_DAYS); None when another compaction holds the lock. Also removes what killed writers
    left in tmp/ (an hour old or more)."""
    t0 = time.monotonic()
    with _exclusive(layout, wait) as held:
        if not held:
            return None
        _clean_tmp(layout)
        parts = [p for p in layout.list_parts() if full or not p.manifest.merged]
        if len(parts) < 2 and not (parts and not parts[0].manifest.merged):
            return CompactResult(0, 0, 0, time.monotonic() - t0)
        bytes_in = sum(p.manifest.bytes for p in parts)
        days = retention_days() if days is None else days
        cutoff = time.time_ns() - int(days * 86_400 * 10**9) if days else 0
        merged = merge_parts(layout, parts, lambda t: t.start_wall_ns >= cutoff, cutoff)
    return CompactResult(len(parts), bytes_in, merged.bytes if merged else 0, time.monotonic() - t0)


def _clean_tmp(layout: StoreLayout) -> None:
    import shutil

    for entry in os.scandir(layout.tmp):
        try:
            if time.time() - entry.stat().st_mtime > 3600:
                shutil.rmtree(entry.path, ignore_errors=True)
        except FileNotFoundError:
            continue


def prune(layout: StoreLayout, older_than_days: float | None = None, keep: int | None = None) -> tuple[int, int]:
    """Remove traces started more than ``older_than_days`` ago and/or all but the ``keep`` newest (and reports
    older than the cutoff). Returns (traces removed, bytes freed)."""
    if older_than_days is None and keep is None:
        raise ValueError("prune needs --older-than DAYS or --keep N")
    with _exclusive(layout, wait=True):
        parts = layout.list_parts()
        entries = sorted({t.trace_id: t for p in parts for t in p.manifest.traces}.values(),
                         key=lambda t: t.start_wall_ns, reverse=True)
        cutoff = time.time_ns() - int(older_than_days * 86_400 * 10**9) if older_than_days is not None else 0
        kept = {t.trace_id for i, t in enumerate(entries)
                if t.start_wall_ns >= cutoff and (keep is None or i < keep)}
        doomed = len(entries) - len(kept)
        before = sum(p.manifest.bytes for p in parts)
        for part in parts:
            ids = {t.trace_id for t in part.manifest.traces}
            old_rows = bool(cutoff) and part.manifest.created_wall_ns < cutoff
            if ids <= kept and not (old_rows and part.manifest.rows.get("validation_results")):
                continue  # nothing of it goes
            if not (ids & kept) and (old_rows or set(part.manifest.rows) <= _TRACE_TABLES):
                layout.remove([part])
            else:
                merge_parts(layout, [part], lambda t: t.trace_id in kept, cutoff)
        after = sum(p.manifest.bytes for p in layout.list_parts())
    return doomed, max(before - after, 0)


_TRACE_TABLES = set(TABLES) - {"validation_results"}


def _main(argv: list[str]) -> int:
    """``python -m sysweave.validator.store.compact STORE``: the background compaction (skips when one runs)."""
    result = compact(StoreLayout(argv[0], create=False), wait=False, days=float(argv[1]) if len(argv) > 1 else None)
    if result is not None and result.parts_in:
        print(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} merged {result.parts_in} parts: {result.bytes_in:,} -> "
              f"{result.bytes_out:,} bytes in {result.seconds:.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
