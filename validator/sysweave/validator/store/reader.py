"""Read a stored trace back into a UnifiedTrace: every table, through the one column map (``schemas.rows``).

Works on either store: it needs only ``fetch_raw(sql)`` (rows with Strings as bytes). Reads use ``FINAL`` so
rows written twice (Kafka redelivery) count once. The one normalisation: an empty captured payload reads
back as ``None`` (the column has no NULL; every consumer treats both alike).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

from sysweave.schemas.events import ProcessSpan, UnifiedTrace
from sysweave.schemas.rows import EVENT_TABLES, TABLES, TRACE_LEVEL, decode_events, decode_process
from sysweave.schemas.textcodec import decode_text
from sysweave.validator.store.base import AmbiguousTrace, TraceNotFound, TraceSummary, quote

__all__ = ["Fetch", "Select", "ambiguous", "list_traces", "load_trace", "read_trace", "resolve_trace_id", "select_sql"]

Fetch = Callable[[str], Sequence[Sequence[Any]]]
Select = Callable[[str, str], Sequence[Sequence[Any]]]  # (table, SQL condition) -> rows
_HEX32 = re.compile(r"^[0-9a-fA-F]{32}$")
_SUMMARY = "trace_id, label, start_wall_ns, processes, events, backend, exit_code"


def select_sql(table: str, where: str, final: bool = True) -> str:
    """SELECT of every ``TABLES`` column of ``table`` where ``where`` holds."""
    return _select(table, where, final)


def _select(table: str, where: str, final: bool = True) -> str:
    cols = ", ".join(c.name for c in TABLES[table])
    return f"SELECT {cols} FROM {table}{' FINAL' if final else ''} WHERE {where}"


def list_traces(fetch: Fetch, limit: int = 20, label: str | None = None) -> list[TraceSummary]:
    """The latest traces (newest first), optionally only those stored under ``label``."""
    where = f"WHERE label = {quote(label)} " if label is not None else ""
    rows = fetch(f"SELECT {_SUMMARY} FROM traces FINAL {where}ORDER BY start_wall_ns DESC LIMIT {int(limit)}")
    return [TraceSummary(decode_text(r[0]), decode_text(r[1]), int(r[2]), int(r[3]), int(r[4]), decode_text(r[5]), int(r[6]))
            for r in rows]


def resolve_trace_id(fetch: Fetch, ref: str) -> str:
    """A trace id (32 hex digits) or a label -> the trace id. A label naming several traces is an error that
    lists them; an id that is not stored is looked up as a label before giving up."""
    ref = ref.strip()
    if _HEX32.match(ref) and fetch(f"SELECT count() FROM traces WHERE trace_id = {quote(ref.lower())}")[0][0]:
        return ref.lower()
    found = list_traces(fetch, limit=50, label=ref)
    if len(found) == 1:
        return found[0].trace_id
    if not found:
        # traces stored before the traces table existed still have processes
        if _HEX32.match(ref) and fetch(f"SELECT count() FROM processes WHERE trace_id = {quote(ref.lower())}")[0][0]:
            return ref.lower()
        raise TraceNotFound(f"no trace with id or label {ref!r} in this store "
                            "(sysweave query --name traces lists the stored ones)")
    raise ambiguous(ref, found)


def ambiguous(ref: str, found: Sequence[TraceSummary]) -> AmbiguousTrace:
    """The error for a label naming several traces: it lists their ids."""
    listing = "\n".join(f"  {t.trace_id}  started {t.start_wall_ns}  {t.processes} processes, {t.events} events"
                        for t in found)
    return AmbiguousTrace(f"label {ref!r} names {len(found)} traces; pass one of their ids instead:\n{listing}")


def load_trace(fetch: Fetch, ref: str) -> UnifiedTrace:
    """The stored trace with this id or label (see :func:`resolve_trace_id`), with every table's events."""
    trace_id = resolve_trace_id(fetch, ref)
    return read_trace(trace_id, lambda table, where: fetch(_select(table, where)))


def read_trace(trace_id: str, select: Select) -> UnifiedTrace:
    """Assemble a trace from its rows: ``select(table, where)`` returns ``table``'s rows (``TABLES`` columns, Strings
    as bytes) matching the SQL condition ``where``; the embedded store reads only the trace's own part."""
    where = f"trace_id = {quote(trace_id)}"
    trace = UnifiedTrace(bytes.fromhex(trace_id))
    meta = sorted(select("traces", where), key=lambda r: int(r[-1]))  # the latest version wins
    if meta:
        names = [c.name for c in TABLES["traces"]]
        row = dict(zip(names, meta[-1]))
        trace.label = decode_text(row["label"])
        trace.late_events, trace.closed = int(row["late_events"]), bool(row["closed"])
    else:
        trace.closed = True
    for raw in select("processes", where):
        span = decode_process(raw)
        trace.processes[(span.host_id, span.pid)] = span
    lists: dict[str, list[Any]] = {name: getattr(trace, name) for name in TRACE_LEVEL.values()}
    for table in EVENT_TABLES:
        level = TRACE_LEVEL.get(table.cls)
        for ev in decode_events(table, select(table.name, where)):
            if level is not None:
                lists[level].append(ev)
                continue
            owner = trace.processes.get((ev.h.host_id, ev.h.pid))
            if owner is None:  # an event whose process row is missing: keep it under a bare span
                owner = trace.processes[(ev.h.host_id, ev.h.pid)] = ProcessSpan(ev.h.host_id, ev.h.pid)
            owner.events.append(ev)
    for p in trace.processes.values():
        p.events.sort(key=lambda e: (e.h.mono_ns, e.h.event_id))
    trace.edges.sort(key=lambda e: (e.src, e.dst, int(e.kind), e.h.event_id))
    for name in ("clocks", "hosts", "lost"):
        getattr(trace, name).sort(key=lambda e: (e.h.mono_ns, e.h.event_id))
    return trace
