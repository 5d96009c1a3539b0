"""Rows -> the columns the stores insert: ``columnar`` (from row dicts) and ``trace_columns`` /
``iter_trace_columns`` (straight from a trace, a column at a time: the write path for the bulk of a trace).

Both give the :func:`sysweave.schemas.rows.stored` columns of a table, Strings as ``bytes`` (UTF-8,
surrogateescape). For syscall_spans that means computing its storage columns (``rows.STORAGE``) from the
derived ones it does not store (``rows.DERIVED``), exactly as its DDL's ALIAS expressions invert them.
``trace_columns(arrays=True)`` may return syscall_spans' integer columns as numpy arrays (numpy is optional:
without it, or where a value does not fit its column, the list path computes the same values).
"""

from __future__ import annotations

import enum
import operator
import re
import sys
import typing
from collections.abc import Iterator, Sequence
from typing import Any

from sysweave.schemas.events import Event, SyscallSpan, UnifiedTrace
from sysweave.schemas.rows import (
    DERIVED,
    HEADER,
    STORAGE,
    TABLES,
    Column,
    EventTable,
    Row,
    event_row,
    stored,
    table_of,
    trace_rows,
)
from sysweave.schemas.textcodec import encode_json, encode_text

__all__ = ["COLUMNWISE_MIN", "columnar", "encode_args_column", "iter_trace_columns", "trace_columns"]


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
    text = encode_json(joined).encode("utf-8", "surrogateescape")
    parts = text[1:-1].split(_SEP_JSON)
    if len(parts) != len(values):
        return [encode_json(v).encode("utf-8", "surrogateescape") for v in values]
    return parts


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


NUMPY_MIN_ROWS = 4096  # below this, the pure-Python path: importing numpy (~0.1 s) costs more than it saves


def _np(rows: int) -> Any:
    """numpy for a column of ``rows`` values, or None (not installed; or too few rows to pay for importing it)."""
    if rows < NUMPY_MIN_ROWS and "numpy" not in sys.modules:
        return None
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
    np = _np(n)
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
    n = len(spans)
    np = _np(n)
    if np is None:
        return None
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
        table = table_of(cls)
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
