"""The embedded store on disk: a directory of immutable parts, each written whole or not at all.

    STORE/FORMAT                 "sysweave-parts 1": what wrote this directory
    STORE/parts/NAME/part.json   the part's manifest (:class:`Manifest`): rows per table, bytes, its traces
    STORE/parts/NAME/TABLE.native   one file per table with rows: ClickHouse Native blocks (``native``), as a
                                 command writes them (no chdb, no pyarrow on the capture path)
    STORE/parts/NAME/TABLE.parquet  the same columns as Parquet (ZSTD): parts merged by ``compact``
    STORE/tmp/                   parts being written: a part is built here and renamed into parts/ (atomic),
                                 so a reader never sees half a part; leftovers of a killed writer are removed
                                 by the next compaction

A part's name sorts by creation time: ``<wall ns, 20 digits>-<what>-<random>``; ``what`` is the trace id for a
trace's part, ``rows`` for other rows (validation reports), ``merged`` for a compacted part. Writing a trace costs
its own size, whatever the history: nothing existing is read or rewritten.

The files hold each table's stored columns (``rows.stored``, the server's insert columns): one trace-to-columns
path (``schemas.columns``) for every store.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sysweave.schemas.rows import Column
from sysweave.schemas.textcodec import decode_text
from sysweave.validator.store import native
from sysweave.validator.store.base import StoreError, StoreUnavailable, TraceSummary

__all__ = ["FORMAT", "Manifest", "Part", "PartWriter", "StoreLayout", "TraceEntry", "summarise_traces"]

FORMAT = "sysweave-parts 1"
MANIFEST = "part.json"
_GLOB_CHARS = set("*?{}[]'\\")


@dataclass(frozen=True, slots=True)
class TraceEntry(TraceSummary):
    """A trace's ``traces`` row as the manifest keeps it (its summary and the version that wrote it): enough to
    list and find traces without SQL."""

    version: int


@dataclass(slots=True)
class Manifest:
    created_wall_ns: int
    rows: dict[str, int] = field(default_factory=dict)  # table -> rows
    bytes: int = 0
    traces: list[TraceEntry] = field(default_factory=list)
    merged: bool = False  # written by compaction (Parquet files)

    def to_json(self) -> str:
        return json.dumps({"format": FORMAT, **asdict(self)}, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> Manifest:
        doc = json.loads(text)
        return cls(int(doc["created_wall_ns"]), {str(k): int(v) for k, v in doc["rows"].items()}, int(doc["bytes"]),
                   [TraceEntry(**t) for t in doc["traces"]], bool(doc.get("merged", False)))


@dataclass(frozen=True, slots=True)
class Part:
    path: Path
    manifest: Manifest

    @property
    def name(self) -> str:
        return self.path.name

    def file(self, table: str) -> Path | None:
        for ext in ("native", "parquet"):
            p = self.path / f"{table}.{ext}"
            if p.exists():
                return p
        return None


def summarise_traces(cols: Sequence[tuple[Column, Sequence[Any]]]) -> list[TraceEntry]:
    """The manifest entries of ``traces`` rows given as wire columns (``columns.columnar``'s form)."""
    by = {c.name: v for c, v in cols}
    return [TraceEntry(decode_text(t), decode_text(lbl), int(s), int(p), int(e), decode_text(b), int(x), int(v))
            for t, lbl, s, p, e, b, x, v in zip(by["trace_id"], by["label"], by["start_wall_ns"], by["processes"],
                                                by["events"], by["backend"], by["exit_code"], by["version"])]


class PartWriter:
    """Build one part in STORE/tmp, then :meth:`commit` renames it into parts/ (or :meth:`abort` removes it)."""

    def __init__(self, tmp_dir: Path, parts_dir: Path, what: str) -> None:
        now = time.time_ns()
        self.name = f"{now:020d}-{what}-{os.urandom(4).hex()}"
        self.tmp = tmp_dir / self.name
        self.final = parts_dir / self.name
        self.tmp.mkdir(parents=True)
        self.manifest = Manifest(now)
        self._files: dict[str, Any] = {}

    def add(self, table: str, cols: Sequence[tuple[Column, Sequence[Any]]]) -> int:
        """Append one block of ``table``'s stored columns; returns its rows."""
        n = len(cols[0][1]) if cols else 0
        if not n:
            return 0
        f = self._files.get(table)
        if f is None:
            f = self._files[table] = open(self.tmp / f"{table}.native", "wb")  # noqa: SIM115 (closed in commit)
        f.write(native.encode_block(cols))
        self.manifest.rows[table] = self.manifest.rows.get(table, 0) + n
        if table == "traces":
            self.manifest.traces.extend(summarise_traces(cols))
        return n

    def commit(self) -> Path:
        for f in self._files.values():
            f.close()
        self.manifest.bytes = sum(p.stat().st_size for p in self.tmp.iterdir())
        (self.tmp / MANIFEST).write_text(self.manifest.to_json())
        os.rename(self.tmp, self.final)
        return self.final

    def abort(self) -> None:
        for f in self._files.values():
            f.close()
        shutil.rmtree(self.tmp, ignore_errors=True)


class StoreLayout:
    """The directory of an embedded store: creates it on first use; tells an old (chdb) store apart."""

    def __init__(self, root: Path | str, create: bool = True) -> None:
        self.root = Path(root).absolute()
        self.parts = self.root / "parts"
        self.tmp = self.root / "tmp"
        if _GLOB_CHARS & set(str(self.root)):
            raise StoreUnavailable(f"the store path {self.root} holds one of {''.join(sorted(_GLOB_CHARS))}, which "
                                   "the store's file patterns cannot quote: choose another --store PATH")
        marker = self.root / "FORMAT"
        if marker.exists():
            if marker.read_text().strip() != FORMAT:
                raise StoreUnavailable(f"{self.root} was written by another sysweave version "
                                       f"({marker.read_text().strip()!r}, this one reads {FORMAT!r})")
        elif self.is_chdb_store(self.root):
            raise StoreUnavailable(
                f"{self.root} is a trace store in the earlier layout (a chdb database); convert it once with: "
                f"sysweave store upgrade --store {self.root}  (every trace and report is kept)")
        elif create:
            try:
                self.parts.mkdir(parents=True, exist_ok=True)
                self.tmp.mkdir(exist_ok=True)
                marker.write_text(FORMAT + "\n")
            except OSError as exc:
                raise StoreUnavailable(f"cannot create the trace store at {self.root}: {exc.strerror}; choose a "
                                       "writable --store PATH (or $SYSWEAVE_STORE)") from exc
        else:
            raise StoreUnavailable(f"no trace store at {self.root}")

    @staticmethod
    def is_chdb_store(path: Path) -> bool:
        return (path / "metadata").is_dir() and not (path / "FORMAT").exists()

    def writer(self, what: str) -> PartWriter:
        try:
            return PartWriter(self.tmp, self.parts, what)
        except OSError as exc:
            raise StoreError(f"cannot write to the trace store at {self.root}: {exc.strerror}") from exc

    def list_parts(self) -> list[Part]:
        """Every committed part, oldest first (a part without a readable manifest is skipped: it is being removed)."""
        out = []
        try:
            names = sorted(os.listdir(self.parts))
        except FileNotFoundError:
            return []
        for name in names:
            path = self.parts / name
            try:
                out.append(Part(path, Manifest.from_json((path / MANIFEST).read_text())))
            except (OSError, ValueError, KeyError, TypeError):
                continue
        return out

    def remove(self, parts: Iterable[Part]) -> int:
        """Delete parts (renamed into tmp/ first, so readers never see a part without its manifest); bytes freed."""
        freed = 0
        for part in parts:
            doomed = self.tmp / f"deleting-{part.name}"
            try:
                os.rename(part.path, doomed)
            except FileNotFoundError:
                continue
            freed += part.manifest.bytes
            shutil.rmtree(doomed, ignore_errors=True)
        return freed

    def traces(self) -> Iterator[tuple[Part, TraceEntry]]:
        for part in self.list_parts():
            for t in part.manifest.traces:
                yield part, t
