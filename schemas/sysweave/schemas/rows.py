"""The column map: events ⇄ ClickHouse rows, one declaration per table, for every store and the reader.

``TABLES`` names each table's columns and ClickHouse types exactly as the ``sql/`` DDL declares them
(``tests/contract/test_ddl.py`` checks it against ``DESCRIBE TABLE`` on chdb and on the 18.16 server).
Event tables are the shared header (``HEADER``) followed by the event dataclass's own fields, one column
per field with the field's name, so the mapping both ways is derived from the dataclass: enums and bools
travel as integers, tuples as arrays, dicts (``args``, ``attrs``) as JSON text (:func:`encode_args`), a
missing payload as the empty string. A new event type needs its ``sql/`` migration and one ``EventTable``
line here; a dataclass whose fields and columns differ fails loudly on first read.

Storage (``STORAGE``, ``DERIVED``): a table may store fewer columns than it shows. syscall_spans (migration
0040) derives ``event_id``, ``mono_ns`` and ``hlc`` (ALIAS columns) from stored ``event_hi``/``event_lo`` (the
id's big-endian halves), ``clock_offset_ns`` (wall - mono) and ``hlc_skew`` (hlc - pack(ticks(wall_ns), 0)),
all modulo 2^64. Readers select the ``TABLES`` columns as before; :func:`columnar` returns the columns to
insert (:func:`stored`); :func:`described` is what ``DESCRIBE TABLE`` lists.

Rows are dicts keyed by column name. Text is ``str`` in rows; :func:`columnar` turns rows into per-column
lists with every ClickHouse ``String`` as ``bytes`` (UTF-8, undecodable bytes kept by surrogateescape), the
form both stores insert without SQL text. :func:`decode_events` reads rows back from that same raw form.
"""

from __future__ import annotations

import enum
import json
import operator
import re
import time
import types
import typing
from collections.abc import Callable, Iterator, Sequence
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

__all__ = [
    "DERIVED", "EVENT_TABLES", "HEADER", "STORAGE", "TABLES", "TRACE_LEVEL", "Column", "EventTable", "Row", "columnar",
    "decode_args", "decode_args_column", "decode_event", "decode_events", "decode_process", "decode_text", "described",
    "encode_args", "encode_args_column", "encode_text", "event_row", "iter_trace_columns", "process_row", "stored",
    "table_of", "trace_columns", "trace_rows",
]

Row = dict[str, Any]


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
        "hostname String, boot_id String, kernel String, arch String, clock_offset_ns Int64, addresses Array(String)")),
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


# Columns a table derives (ALIAS in its DDL) and the stored columns they come from; _storage_columns computes
# the stored ones exactly as the DDL's ALIAS expressions invert them.
DERIVED: dict[str, tuple[str, ...]] = {"syscall_spans": ("event_id", "mono_ns", "hlc", "nr", "payload_len")}
STORAGE: dict[str, tuple[Column, ...]] = {"syscall_spans": _columns(
    "event_hi UInt64, event_lo UInt64, clock_offset_ns UInt64, hlc_skew UInt64, nr_fix UInt16, payload_len_fix UInt64")}


class _NrBase(dict[bytes, int]):
    def __missing__(self, key: bytes) -> int:
        return 0


_NR_BASE: _NrBase | None = None


def _nr_base() -> _NrBase:
    """name (UTF-8) -> the syscall number syscall_spans' DDL derives ``nr`` from: the frozen x86-64 table in its
    ``transform(name, [...], [...])``, read from the migration file itself so the two never differ."""
    global _NR_BASE
    if _NR_BASE is None:
        from importlib import resources

        text = resources.files("sysweave.schemas").joinpath("sql", "0040_syscall_spans_v2.sql").read_text("utf-8")
        m = re.search(r"transform\(name, \[([^\]]*)\], \[([^\]]*)\]", text)
        if m is None:
            raise RuntimeError("0040_syscall_spans_v2.sql: no transform(name, [...], [...]) for nr")
        names = [encode_text(n.strip().strip("'")) for n in m.group(1).split(",")]
        _NR_BASE = _NrBase(zip(names, (int(x) for x in m.group(2).split(","))))
    return _NR_BASE


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


# --- text and args ---------------------------------------------------------------------------------------

def encode_text(s: str) -> bytes:
    """str -> the bytes a ClickHouse String holds (surrogateescape keeps undecodable bytes exact)."""
    return s.encode("utf-8", "surrogateescape")


def decode_text(b: bytes | str) -> str:
    return b if isinstance(b, str) else b.decode("utf-8", "surrogateescape")


def _hex_default(v: Any) -> Any:
    if isinstance(v, (bytes, bytearray, memoryview)):
        return {"$hex": bytes(v).hex()}
    raise TypeError(f"cannot store {type(v).__name__} in JSON args")


# one encoder (json.dumps(..., ensure_ascii=False) builds one per call); tuples are arrays natively, bytes go
# through the default hook, so the C encoder does all the work
_JSON = json.JSONEncoder(ensure_ascii=False, default=_hex_default).encode


def encode_args(args: dict[str, Any]) -> str:
    """Syscall arguments as JSON text: bytes as {"$hex": "..."}, tuples as arrays; other values as JSON has them.

    Text keys such as ``path`` stay plain JSON strings, so ``visitParamExtractString(args, 'path')`` (18.16 and
    current ClickHouse alike) reads them."""
    return _JSON(args)


_SEP = "\x00\x01sysweave-row\x01\x00"
_SEP_JSON = b', "\\u0000\\u0001sysweave-row\\u0001\\u0000", '


def encode_args_column(values: Sequence[dict[str, Any]]) -> list[bytes]:
    """``encode_args`` of many dicts as the UTF-8 bytes a String column inserts, in one call of the C encoder:
    the dicts are encoded as one JSON array with a separator string between them, then split. A separator inside
    some value would add pieces; then (count differs) each dict is encoded on its own."""
    if not values:
        return []
    joined: list[Any] = [_SEP] * (2 * len(values) - 1)
    joined[::2] = values
    text = _JSON(joined).encode("utf-8", "surrogateescape")
    parts = text[1:-1].split(_SEP_JSON)
    if len(parts) != len(values):
        return [_JSON(v).encode("utf-8", "surrogateescape") for v in values]
    return parts


def _hex_hook(d: dict[str, Any]) -> Any:
    return bytes.fromhex(d["$hex"]) if len(d) == 1 and "$hex" in d else d


def _untuple(args: dict[str, Any]) -> dict[str, Any]:
    """JSON arrays back to tuples (args values are flat: tuples of ints or of strings)."""
    for k, v in args.items():
        if type(v) is list:
            args[k] = tuple(v)
    return args


def decode_args(text: str) -> dict[str, Any]:
    return _untuple(json.loads(text, object_hook=_hex_hook)) if text else {}


def decode_args_column(raw: Sequence[bytes | str]) -> list[dict[str, Any]]:
    """Many JSON texts at once (one parse of a JSON array: the reader's fast path for 10^5 rows)."""
    parts = [(v if isinstance(v, bytes) else encode_text(v)) or b"{}" for v in raw]
    text = (b"[" + b",".join(parts) + b"]").decode("utf-8", "surrogateescape")
    return [_untuple(d) for d in json.loads(text, object_hook=_hex_hook)]


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
    """Every row a trace produces, by table (``events=False``: all but the process events' own rows)."""
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
        "events": n_events, "lost_events": sum(x.count for x in trace.lost), "late_events": trace.late_events,
        "exit_code": exit_code, "backend": backend, "closed": 1 if trace.closed else 0, "version": version}]
    return tables


# --- rows -> columns (the insert form) ---------------------------------------------------------------------

def _default(typ: str) -> Any:
    if typ.startswith("Nullable("):
        return None
    if typ.startswith("Array("):
        return []
    if typ == "String" or typ.startswith("FixedString("):
        return b""
    return 0.0 if typ.startswith("Float") else 0


def _wire_column(typ: str, values: list[Any]) -> list[Any]:
    """Row values of one column -> what the stores insert (String -> bytes; None -> the type's default)."""
    if typ == "String" or typ.startswith("FixedString("):
        return [v.encode("utf-8", "surrogateescape") if type(v) is str else (b"" if v is None else bytes(v))
                for v in values]
    if typ == "Array(String)":
        return [[x.encode("utf-8", "surrogateescape") if type(x) is str else bytes(x) for x in v] if v else []
                for v in values]
    if typ.startswith("Array("):
        return [list(v) if v else [] for v in values]
    if typ.startswith("Nullable("):
        return values
    default = _default(typ)
    return [default if v is None else v for v in values]


def columnar(table: str, rows: Sequence[Row]) -> list[tuple[Column, list[Any]]]:
    """Rows -> one list per stored column of ``table`` (:func:`stored`; missing keys take the column's default)."""
    out = []
    for c in TABLES[table]:
        name, default = c.name, _default(c.type)
        out.append((c, _wire_column(c.type, [r.get(name, default) for r in rows])))
    return _stored_columns(table, out)


def _stored_columns(table: str, cols: list[tuple[Column, list[Any]]]) -> list[tuple[Column, list[Any]]]:
    """Wire columns of every ``TABLES`` column -> those of :func:`stored` (derived ones computed away)."""
    derived = DERIVED.get(table)
    if not derived:
        return cols
    by_name = {c.name: v for c, v in cols}
    storage = _storage_columns(table, by_name)
    return [(c, v) for c, v in cols if c.name not in derived] + [(c, storage[c.name]) for c in STORAGE[table]]


_MASK = (1 << 64) - 1


def _np() -> Any:
    try:
        import numpy
    except ImportError:  # numpy is optional: the pure-Python path computes the same values
        return None
    return numpy


def _storage_columns(table: str, cols: dict[str, list[Any]]) -> dict[str, list[int]]:
    """syscall_spans' stored columns from its logical ones (wire form; the inverse of its DDL's ALIAS expressions):
    event_hi/lo = the id's big-endian halves; clock_offset_ns = wall - mono; hlc_skew = hlc - ticks(wall) << 16,
    where ticks(ns) = ns * 2^16 // 10^9 = (ns // 1953125) * 128 + (ns % 1953125) * 128 // 1953125; nr_fix =
    nr - the frozen table's number for name (mod 2^16); payload_len_fix = payload_len - (ret if ret > 0 and a
    payload was captured, else 0); all mod 2^64."""
    assert table == "syscall_spans"
    ids, mono, wall, hlc = cols["event_id"], cols["mono_ns"], cols["wall_ns"], cols["hlc"]
    n = len(ids)
    base = list(map(_nr_base().__getitem__, cols["name"]))
    nr_fix = [(a - b) & 0xFFFF for a, b in zip(cols["nr"], base)]
    plen_fix = [(p - (r if r > 0 and pay else 0)) & _MASK
                for p, r, pay in zip(cols["payload_len"], cols["ret"], cols["payload"])]
    np = _np()
    if np is not None and n:
        joined = b"".join(ids)
        try:
            if len(joined) != 16 * n:
                raise ValueError("an event id is not 16 bytes")
            halves = np.frombuffer(joined, dtype=">u8").reshape(n, 2)
            w = np.array(wall, dtype=np.uint64)
            m = np.array(mono, dtype=np.uint64)
            h = np.array(hlc, dtype=np.uint64)
        except (ValueError, OverflowError, TypeError):
            pass  # short ids (FixedString pads them) or values outside UInt64: the exact Python path
        else:
            with np.errstate(over="ignore"):
                q, r = np.divmod(w, np.uint64(1953125))
                ticks = q * np.uint64(128) + r * np.uint64(128) // np.uint64(1953125)
                skew = h - (ticks << np.uint64(16))
                offset = w - m
            return {"event_hi": halves[:, 0].tolist(), "event_lo": halves[:, 1].tolist(),
                    "clock_offset_ns": offset.tolist(), "hlc_skew": skew.tolist(), "nr_fix": nr_fix,
                    "payload_len_fix": plen_fix}
    padded = [bytes(e).ljust(16, b"\0") for e in ids]
    return {"event_hi": [int.from_bytes(e[:8], "big") for e in padded],
            "event_lo": [int.from_bytes(e[8:16], "big") for e in padded],
            "clock_offset_ns": [(w - m) & _MASK for w, m in zip(wall, mono)],
            "hlc_skew": [(h - ((w * 65536 // 1_000_000_000) << 16)) & _MASK for h, w in zip(hlc, wall)],
            "nr_fix": nr_fix, "payload_len_fix": plen_fix}


# --- a trace -> columns, straight (the store's write path: no row dicts for the bulk of a trace) ---------------

COLUMNWISE_MIN = 64  # events of one class from which trace_columns extracts column-wise (fewer: row dicts)
_GET_H = operator.attrgetter("h")
_GET_HEADER = operator.attrgetter("event_id", "host_id", "pid", "tid", "mono_ns", "wall_ns", "duration_ns", "stamp")
_GET_STAMP = operator.attrgetter("lamport", "hlc")


def _event_columns(table: EventTable, trace_id: bytes, events: Sequence[Event]) -> list[tuple[Column, list[Any]]] | None:
    """Wire columns of ``table.columns`` for events of one class, extracted a column at a time (C-level
    attrgetter/zip, one JSON encoder call for all args). None where a field needs a per-value conversion that
    only the row path knows (then the caller uses :func:`event_row`)."""
    n = len(events)
    ids, hosts, pids, tids, monos, walls, durs, stamps = zip(*map(_GET_HEADER, map(_GET_H, events)))
    lamports, hlcs = zip(*map(_GET_STAMP, stamps))
    host_bytes = {h: encode_text(h) for h in set(hosts)}
    out: list[tuple[Column, list[Any]]] = []
    header_values: list[list[Any]] = [[trace_id] * n, list(ids), list(map(host_bytes.__getitem__, hosts)), list(pids),
                                      list(tids), list(monos), list(walls), list(durs), list(lamports), list(hlcs)]
    out.extend(zip(HEADER, header_values))
    hints = typing.get_type_hints(table.cls)
    values = zip(*map(operator.attrgetter(*[c.name for c in table.fields]), events)) if len(table.fields) > 1 else \
        ([v] for v in [[getattr(e, table.fields[0].name) for e in events]])
    for c, col in zip(table.fields, values):
        hint = hints[c.name]
        if c.name == "args" or typing.get_origin(hint) is dict:
            out.append((c, encode_args_column(col)))
        elif c.name == "payload":
            out.append((c, [p or b"" for p in col]))
        elif c.type == "String" and hint is str:
            texts = {t: encode_text(t) for t in set(col)}
            out.append((c, list(map(texts.__getitem__, col))))
        elif hint is int and c.type.startswith(("UInt", "Int")):
            out.append((c, list(col)))
        elif hint is bool or (isinstance(hint, type) and issubclass(hint, enum.IntEnum)):
            out.append((c, list(map(int, col))))
        else:
            return None
    return out


_NP_TYPES = {"UInt8": "uint8", "UInt16": "uint16", "UInt32": "uint32", "UInt64": "uint64", "Int64": "int64"}


def _span_arrays(trace_id: bytes, spans: Sequence[Event]) -> list[tuple[Column, Any]] | None:
    """syscall_spans' stored columns straight from the spans, integers as numpy arrays (``np.fromiter`` over C-level
    attrgetters: no per-value Python code but the dict lookups for names and hosts), Strings as lists of bytes.
    None without numpy, or where a value does not fit its column (the list path then keeps the exact behaviour)."""
    np = _np()
    if np is None:
        return None
    n = len(spans)
    get = operator.attrgetter
    hs = list(map(_GET_H, spans))
    try:
        def ints(objs: Sequence[Any], attr: str, typ: str) -> Any:
            return np.fromiter(map(get(attr), objs), dtype=_NP_TYPES[typ], count=n)

        joined = b"".join(map(get("event_id"), hs))
        if len(joined) != 16 * n:
            return None
        halves = np.frombuffer(joined, dtype=">u8").reshape(n, 2).astype(np.uint64)
        stamps = list(map(get("stamp"), hs))
        wall, mono, hlc = ints(hs, "wall_ns", "UInt64"), ints(hs, "mono_ns", "UInt64"), ints(stamps, "hlc", "UInt64")
        names = list(map(get("name"), spans))
        texts = {t: encode_text(t) for t in set(names)}
        name_bytes = list(map(texts.__getitem__, names))
        payloads = [p or b"" for p in map(get("payload"), spans)]
        ret, nr = ints(spans, "ret", "Int64"), ints(spans, "nr", "UInt16")
        plen = ints(spans, "payload_len", "UInt64")
        has_payload = np.fromiter(map(len, payloads), dtype=np.int64, count=n) > 0
        nr_base = np.fromiter(map(_nr_base().__getitem__, name_bytes), dtype=np.int64, count=n)
        hosts = list(map(get("host_id"), hs))
        host_bytes = {h: encode_text(h) for h in set(hosts)}
        values: dict[str, Any] = {
            "trace_id": [trace_id] * n, "host_id": list(map(host_bytes.__getitem__, hosts)),
            "pid": ints(hs, "pid", "UInt32"), "tid": ints(hs, "tid", "UInt32"), "wall_ns": wall,
            "duration_ns": ints(hs, "duration_ns", "UInt64"), "lamport": ints(stamps, "lamport", "UInt64"),
            "name": name_bytes, "ret": ret, "args": encode_args_column(list(map(get("args"), spans))),
            "payload": payloads, "reason": ints(spans, "reason", "UInt8"),
            "event_hi": halves[:, 0], "event_lo": halves[:, 1]}
        with np.errstate(over="ignore"):
            q, r = np.divmod(wall, np.uint64(1953125))
            ticks = q * np.uint64(128) + r * np.uint64(128) // np.uint64(1953125)
            values["clock_offset_ns"] = wall - mono
            values["hlc_skew"] = hlc - (ticks << np.uint64(16))
            values["nr_fix"] = ((nr.astype(np.int64) - nr_base) & 0xFFFF).astype(np.uint16)
            values["payload_len_fix"] = plen - np.where(has_payload & (ret > 0), ret, 0).astype(np.uint64)
    except (OverflowError, ValueError, TypeError):
        return None
    return [(c, values[c.name]) for c in stored("syscall_spans")]


def trace_columns(trace: UnifiedTrace, label: str = "", backend: str = "", exit_code: int = 0,
                  arrays: bool = False) -> dict[str, list[tuple[Column, Any]]]:
    """Every table's insert columns (:func:`stored`) for a trace: what ``columnar(t, trace_rows(...)[t])`` gives,
    without building a row dict per event for the event classes whose fields convert column-wise. ``arrays``:
    integer columns of syscall_spans may be numpy arrays (the stores insert those without per-value work)."""
    return dict(iter_trace_columns(trace, label, backend, exit_code, arrays))


def iter_trace_columns(trace: UnifiedTrace, label: str = "", backend: str = "", exit_code: int = 0,
                       arrays: bool = False, chunk_rows: int = 0) -> Iterator[tuple[str, list[tuple[Column, Any]]]]:
    """:func:`trace_columns` as (table, columns) pieces, each table's events in chunks of at most ``chunk_rows``
    (0: one piece per table), built one at a time: a writer can insert one piece while the next is built."""
    tid = trace.trace_id.hex()
    tid_bytes = encode_text(tid)
    by_cls: dict[type, list[Event]] = {}
    for span in trace.processes.values():
        kinds = set(map(type, span.events))
        if len(kinds) == 1:  # the common case: a process's events are all syscall spans
            by_cls.setdefault(kinds.pop(), []).extend(span.events)
            continue
        for e in span.events:
            lst = by_cls.get(type(e))
            if lst is None:
                lst = by_cls[type(e)] = []
            lst.append(e)
    rows: dict[str, list[Row]] = {}
    for cls, events in by_cls.items():
        table = _BY_CLASS[cls]
        if len(events) < COLUMNWISE_MIN:
            rows.setdefault(table.name, []).extend(event_row(tid, e)[1] for e in events)
            continue
        step = chunk_rows or len(events)
        for start in range(0, len(events), step):
            chunk = events[start:start + step]
            fast = _span_arrays(tid_bytes, chunk) if arrays and cls is SyscallSpan else None
            if fast is not None:
                yield table.name, fast
                continue
            cols = _event_columns(table, tid_bytes, chunk)
            if cols is None:
                rows.setdefault(table.name, []).extend(event_row(tid, e)[1] for e in chunk)
            else:
                yield table.name, _stored_columns(table.name, cols)
    summary = trace_rows(trace, label, backend, exit_code, events=False)
    summary["traces"][0]["events"] = sum(len(v) for v in by_cls.values())
    for name, extra in summary.items():
        rows.setdefault(name, []).extend(extra)
    for name, table_rows in rows.items():
        yield name, columnar(name, table_rows)


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
    """Rows in ``table.columns`` order, Strings as bytes (``columnar``'s form) -> events, decoded column by column."""
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
    """One row in ``table.columns`` order, Strings as bytes (``columnar``'s form) -> the event."""
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

