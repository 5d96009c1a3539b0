"""The column map: events ⇄ ClickHouse rows, one declaration per table, for every store and the reader.

``TABLES`` names each table's columns and ClickHouse types exactly as the ``sql/`` DDL declares them
(``tests/contract/test_ddl.py`` checks it against ``DESCRIBE TABLE`` on chdb and on the 18.16 server).
Event tables are the shared header (``HEADER``) followed by the event dataclass's own fields, one column
per field with the field's name, so the mapping both ways is derived from the dataclass: enums and bools
travel as integers, tuples as arrays, dicts (``args``, ``attrs``) as JSON text (``textcodec``), a
missing payload as the empty string. A new event type needs its ``sql/`` migration and one ``EventTable``
line here; a dataclass whose fields and columns differ fails loudly on first read.

Storage (``STORAGE``, ``DERIVED``): a table may store fewer columns than it shows. syscall_spans (migration
0040) derives ``event_id``, ``mono_ns`` and ``hlc`` (ALIAS columns) from stored ``event_hi``/``event_lo`` (the
id's big-endian halves), ``clock_offset_ns`` (wall - mono) and ``hlc_skew`` (hlc - pack(ticks(wall_ns), 0)),
all modulo 2^64. Readers select the ``TABLES`` columns as before; ``columns.columnar`` returns the columns to
insert (:func:`stored`); :func:`described` is what ``DESCRIBE TABLE`` lists.

Rows are dicts keyed by column name. Text is ``str`` in rows; ``columns.columnar`` turns rows into per-column
lists with every ClickHouse ``String`` as ``bytes`` (UTF-8, undecodable bytes kept by surrogateescape), the
form both stores insert without SQL text. :func:`decode_events` reads rows back from that same raw form.
"""

from __future__ import annotations

import enum
import time
import types
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from typing import Any

from sysweave.schemas.events import (
    CausalEdge,
    CausalStamp,
    ClockEstimate,
    ComputeBlock,
    Event,
    EventHeader,
    FileState,
    FunctionAggregate,
    GpuKernel,
    GpuMemoryTransfer,
    GpuSample,
    HostInfo,
    LostEvents,
    Mark,
    ProcessEvent,
    ProcessSpan,
    SyscallAggregate,
    SyscallSpan,
    TranspilerDecision,
    UnifiedTrace,
)
from sysweave.schemas.textcodec import decode_args, decode_args_column, decode_text, encode_args

__all__ = [
    "DERIVED", "EVENT_TABLES", "HEADER", "STORAGE", "TABLES", "TRACE_LEVEL", "Column", "EventTable", "Row",
    "decode_event", "decode_events", "decode_process", "described", "event_row", "process_row", "stored", "table_of",
    "trace_backend", "trace_rows",
]

Row = dict[str, Any]
U64_MAX = 2**64 - 1


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    type: str  # ClickHouse type as the DDL spells it: UInt32, String, FixedString(16), Array(String), Nullable(Int32)


def _columns(spec: str) -> tuple[Column, ...]:
    """'a UInt8, b Array(String)' -> columns (no type here contains a comma)."""
    out = []
    for part in spec.split(","):
        name, typ = part.split()
        out.append(Column(name, typ))
    return tuple(out)


HEADER = _columns("trace_id String, event_id FixedString(16), host_id String, pid UInt32, tid UInt32, mono_ns UInt64, "
                  "wall_ns UInt64, duration_ns UInt64, lamport UInt64, hlc UInt64")


@dataclass(frozen=True, slots=True)
class EventTable:
    name: str
    cls: type
    fields: tuple[Column, ...]  # after the header; each named as the dataclass field it holds

    @property
    def columns(self) -> tuple[Column, ...]:
        return HEADER + self.fields


EVENT_TABLES: tuple[EventTable, ...] = (
    EventTable("syscall_spans", SyscallSpan, _columns(
        "nr UInt16, name String, ret Int64, args String, payload String, payload_len UInt64, reason UInt8")),
    EventTable("process_events", ProcessEvent, _columns(
        "type UInt8, parent_pid UInt32, child_pid UInt32, filename String, argv Array(String), "
        "exit_code Nullable(Int32), signal Nullable(Int32), comm String")),
    EventTable("syscall_aggregates", SyscallAggregate, _columns(
        "nr UInt16, name String, calls UInt64, errors UInt64, total_ns UInt64, hist_log2 Array(UInt64)")),
    EventTable("gpu_kernels", GpuKernel, _columns(
        "name String, device UInt32, stream UInt64, grid Array(UInt32), block Array(UInt32), correlation_id UInt64, "
        "side String")),
    EventTable("gpu_transfers", GpuMemoryTransfer, _columns(
        "kind UInt8, bytes UInt64, device UInt32, stream UInt64, correlation_id UInt64, side String")),
    EventTable("compute_blocks", ComputeBlock, _columns(
        "name String, op String, elements UInt64, symbol String, source String, decision_id String, attrs String")),
    EventTable("transpiler_decisions", TranspilerDecision, _columns(
        "decision_id String, source_location String, target_symbol String, kind String, chosen String, "
        "alternatives Array(String), reason String, source String, attrs String")),
    EventTable("marks", Mark, _columns("name String, attrs String")),
    EventTable("causal_edges", CausalEdge, _columns("src FixedString(16), dst FixedString(16), kind UInt8, detail String")),
    EventTable("clock_estimates", ClockEstimate, _columns(
        "host String, reference String, offset_ns Int64, bound_ns Int64, drift_ppb Int64, samples UInt64")),
    EventTable("lost_events", LostEvents, _columns("source String, count UInt64, detail String")),
    EventTable("hosts", HostInfo, _columns(
        "hostname String, boot_id String, kernel String, arch String, clock_offset_ns Int64, addresses Array(String), "
        "backend String")),
    EventTable("file_states", FileState, _columns(
        "path String, exists UInt8, type String, mode UInt32, size UInt64, content_hash String, content String, "
        "target String, cwd String")),
    EventTable("gpu_samples", GpuSample, _columns(
        "device UInt32, process_pid UInt32, name String, gpu_util_pct Nullable(UInt32), mem_util_pct Nullable(UInt32), "
        "memory_used_bytes Nullable(UInt64), memory_total_bytes Nullable(UInt64), power_mw Nullable(UInt64), "
        "sm_clock_mhz Nullable(UInt32)")),
    EventTable("function_aggregates", FunctionAggregate, _columns(
        "symbol String, library String, calls UInt64, total_ns UInt64, hist_log2 Array(UInt64), source String")),
)
_BY_CLASS: dict[type, EventTable] = {t.cls: t for t in EVENT_TABLES}
# events that belong to the whole trace rather than to one process, and the UnifiedTrace list holding each
TRACE_LEVEL: dict[type, str] = {CausalEdge: "edges", ClockEstimate: "clocks", HostInfo: "hosts", LostEvents: "lost"}

TABLES: dict[str, tuple[Column, ...]] = {
    "traces": _columns(
        "trace_id String, label String, root_argv Array(String), start_wall_ns UInt64, end_wall_ns UInt64, "
        "hosts Array(String), processes UInt32, events UInt64, lost_events UInt64, late_events UInt64, "
        "exit_code Int32, backend String, closed UInt8, version UInt64"),
    "processes": _columns(
        "trace_id String, host_id String, pid UInt32, parent_host_id String, parent_pid UInt32, argv Array(String), "
        "start_wall_ns UInt64, end_wall_ns UInt64, exit_code Nullable(Int32), signal Nullable(Int32), version UInt64"),
    **{t.name: t.columns for t in EVENT_TABLES},
    "validation_results": _columns(
        "validation_id String, created_wall_ns UInt64, original_cmd String, transpiled_cmd String, "
        "original_trace_id String, transpiled_trace_id String, verdict String, confidence Float64, "
        "explanation String, speedup Float64, report String, version UInt64"),
}


# Columns a table derives (ALIAS in its DDL) and the stored columns they come from; columns._storage_columns
# computes the stored ones exactly as the DDL's ALIAS expressions invert them.
DERIVED: dict[str, tuple[str, ...]] = {"syscall_spans": ("event_id", "mono_ns", "hlc", "nr", "payload_len")}
STORAGE: dict[str, tuple[Column, ...]] = {"syscall_spans": _columns(
    "event_hi UInt64, event_lo UInt64, clock_offset_ns UInt64, hlc_skew UInt64, nr_fix UInt16, payload_len_fix UInt64")}


def described(table: str) -> tuple[Column, ...]:
    """Every column ``DESCRIBE TABLE`` lists, in order (logical types: ``ddl.logical_type``): the stored ones,
    then the derived ones (ALIAS columns come last in the DDL: 18.16's DESCRIBE lists them last anyway)."""
    derived = DERIVED.get(table, ())
    return stored(table) + tuple(c for c in TABLES[table] if c.name in derived)


def stored(table: str) -> tuple[Column, ...]:
    """The columns an insert writes: the table's own minus the derived ones, plus their storage columns."""
    derived = DERIVED.get(table, ())
    return tuple(c for c in TABLES[table] if c.name not in derived) + STORAGE.get(table, ())


def table_of(cls: type) -> EventTable:
    return _BY_CLASS[cls]


# --- events -> rows ----------------------------------------------------------------------------------------

def _header(trace_id: str, e: Event) -> Row:
    h = e.h
    return {"trace_id": trace_id, "event_id": h.event_id, "host_id": h.host_id, "pid": h.pid, "tid": h.tid,
            "mono_ns": h.mono_ns, "wall_ns": h.wall_ns, "duration_ns": h.duration_ns,
            "lamport": h.stamp.lamport, "hlc": h.stamp.hlc}


def _encode_value(name: str, v: Any) -> Any:
    if name == "args" or isinstance(v, dict):  # syscall args, event attrs
        return encode_args(v)
    if name == "payload":
        return v or b""
    if isinstance(v, (enum.IntEnum, bool)):
        return int(v)
    if isinstance(v, tuple):
        return list(v)
    return v


def _field_encoder(name: str, hint: Any) -> Callable[[Any], Any] | None:
    """What ``_encode_value`` does for a field of this type, chosen once per field (None: the value as is)."""
    origin = typing.get_origin(hint)
    if name == "args" or origin is dict:
        return encode_args
    if name == "payload":
        return lambda v: v or b""
    if origin is tuple:
        return list
    if hint is bool or (isinstance(hint, type) and issubclass(hint, enum.IntEnum)):
        return int
    if origin in (typing.Union, types.UnionType):
        return lambda v: _encode_value(name, v)
    return None


_ENCODERS: dict[type, tuple[EventTable, list[tuple[str, Callable[[Any], Any] | None]]]] = {}


def _encoders(cls: type) -> tuple[EventTable, list[tuple[str, Callable[[Any], Any] | None]]]:
    if cls not in _ENCODERS:
        table = _BY_CLASS[cls]
        hints = typing.get_type_hints(cls)
        _ENCODERS[cls] = table, [(c.name, _field_encoder(c.name, hints[c.name])) for c in table.fields]
    return _ENCODERS[cls]


def event_row(trace_id: str, e: Event) -> tuple[str, Row]:
    """(table, row) for one event."""
    table, encoders = _encoders(type(e))
    r = _header(trace_id, e)
    for name, enc in encoders:
        v = getattr(e, name)
        r[name] = v if enc is None else enc(v)
    return table.name, r


def process_row(trace_id: str, span: ProcessSpan, version: int) -> Row:
    parent = span.parent or ("", 0)
    return {"trace_id": trace_id, "host_id": span.host_id, "pid": span.pid, "parent_host_id": parent[0],
            "parent_pid": parent[1], "argv": list(span.argv), "start_wall_ns": span.start_wall_ns,
            "end_wall_ns": span.end_wall_ns, "exit_code": span.exit_code, "signal": span.signal, "version": version}


def trace_rows(trace: UnifiedTrace, label: str = "", backend: str = "", exit_code: int = 0,
               events: bool = True) -> dict[str, list[Row]]:
    """Every row a trace produces, by table (``events=False``: all but the process events' own rows).

    Stores do not write these: every store writes ``columns.iter_trace_columns`` (which takes the summary rows,
    ``events=False``, from here). With ``events=True`` this is the per-row reference the column path is tested
    against (``tests/store/test_columns.py``)."""
    tid = trace.trace_id.hex()
    version = time.time_ns()
    tables: dict[str, list[Row]] = {"processes": []}
    n_events = 0
    for span in trace.processes.values():
        tables["processes"].append(process_row(tid, span, version))
        n_events += len(span.events)
        if not events:
            continue
        for e in span.events:
            name, row = event_row(tid, e)
            tables.setdefault(name, []).append(row)
    trace_level: list[Event] = [*trace.edges, *trace.clocks, *trace.lost, *trace.hosts]
    for ev in trace_level:
        name, row = event_row(tid, ev)
        tables.setdefault(name, []).append(row)
    starts = [p.start_wall_ns for p in trace.processes.values()] or [0]
    ends = [p.end_wall_ns for p in trace.processes.values()] or [0]
    roots = [p for p in trace.processes.values() if p.parent is None]
    tables["traces"] = [{
        "trace_id": tid, "label": label, "root_argv": list(roots[0].argv) if roots else [],
        "start_wall_ns": min(starts), "end_wall_ns": max(ends),
        "hosts": sorted({p.host_id for p in trace.processes.values()}), "processes": len(trace.processes),
        "events": n_events, "lost_events": min(sum(x.count for x in trace.lost), U64_MAX),  # saturates, never wraps
        "late_events": trace.late_events,
        "exit_code": exit_code, "backend": backend or trace_backend(trace), "closed": 1 if trace.closed else 0,
        "version": version}]
    return tables


def trace_backend(trace: UnifiedTrace) -> str:
    """The capture backend(s) that observed a trace, from its hosts: "ebpf", "ptrace", "ebpf,ptrace" for a
    mixed fleet, "" when no host said (never a guess)."""
    return ",".join(sorted({h.backend for h in trace.hosts if h.backend}))


# --- raw rows -> events (the reader) -----------------------------------------------------------------------

def _decode_dict(v: Any) -> dict[str, Any]:  # decode_events recognises it by identity (one parse per column)
    return decode_args(decode_text(v))


def _decoder(name: str, hint: Any) -> Callable[[Any], Any]:
    if name == "args" or typing.get_origin(hint) is dict:
        return _decode_dict
    if name == "payload":
        return lambda v: bytes(v) if v else None
    origin, params = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        inner = [p for p in params if p is not type(None)]
        dec = _decoder(name, inner[0])
        return lambda v: None if v is None else dec(v)
    if origin is tuple:
        item = _decoder(name, params[0])
        return lambda v: tuple(item(x) for x in v)
    if hint is str:
        return decode_text
    if hint is bytes:
        return bytes
    if hint is bool:
        return lambda v: bool(int(v))
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return lambda v: hint(int(v))
    return int


_DECODERS: dict[str, list[Callable[[Any], Any]]] = {}


def _decoders(table: EventTable) -> list[Callable[[Any], Any]]:
    if table.name not in _DECODERS:
        hints = typing.get_type_hints(table.cls)
        names = [f.name for f in fields(table.cls) if f.name != "h"]
        if names != [c.name for c in table.fields]:
            raise TypeError(f"column map of {table.name} does not match {table.cls.__name__}'s fields {names}: "
                            "add the column (a new sql/ migration) and its entry in EVENT_TABLES")
        _DECODERS[table.name] = [_decoder(c.name, hints[c.name]) for c in table.fields]
    return _DECODERS[table.name]


def decode_events(table: EventTable, rows: Sequence[Sequence[Any]]) -> list[Event]:
    """Rows in ``table.columns`` order, Strings as bytes (``columns.columnar``'s form) -> events, decoded column by column."""
    if not rows:
        return []
    cols = list(zip(*rows))
    hosts: dict[Any, str] = {}
    host_ids = [hosts.get(v) or hosts.setdefault(v, decode_text(v)) for v in cols[2]]
    headers = [EventHeader(bytes(e), h, p, t, m, w, d, CausalStamp(lam, hlc))
               for e, h, p, t, m, w, d, lam, hlc in zip(cols[1], host_ids, *cols[3:10])]
    values: list[list[Any]] = []
    for dec, c, col in zip(_decoders(table), table.fields, cols[len(HEADER):]):
        if c.type == "String" and dec is _decode_dict:
            values.append(decode_args_column(col))
        else:
            values.append([dec(v) for v in col])
    cls = table.cls
    return [cls(h, *vals) for h, *vals in zip(headers, *values)]


def decode_event(table: EventTable, raw: Sequence[Any]) -> Event:
    """One row in ``table.columns`` order, Strings as bytes (``columns.columnar``'s form) -> the event."""
    h = EventHeader(bytes(raw[1]), decode_text(raw[2]), int(raw[3]), int(raw[4]), int(raw[5]), int(raw[6]),
                    int(raw[7]), CausalStamp(int(raw[8]), int(raw[9])))
    n = len(HEADER)
    values = [dec(v) for dec, v in zip(_decoders(table), raw[n:])]
    ev: Event = table.cls(h, *values)
    return ev


def decode_process(raw: Sequence[Any]) -> ProcessSpan:
    """One ``processes`` row in ``TABLES['processes']`` order, Strings as bytes -> the span (without events)."""
    parent_host = decode_text(raw[3])
    return ProcessSpan(decode_text(raw[1]), int(raw[2]), (parent_host, int(raw[4])) if parent_host else None,
                       tuple(decode_text(a) for a in raw[5]), int(raw[6]), int(raw[7]),
                       None if raw[8] is None else int(raw[8]), None if raw[9] is None else int(raw[9]))

