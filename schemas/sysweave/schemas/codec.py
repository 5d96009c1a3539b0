"""msgpack wire format: versioned batch envelopes of positional events.

Envelope (a msgpack array)::

    [schema_version, producer_id, sequence, created_wall_ns, [event, event, ...]]

Event (a msgpack array; header flattened, then the type's own fields in declaration order)::

    [kind, event_id(bin 16), host_id, pid, tid, mono_ns, wall_ns, duration_ns, lamport, hlc, *fields]

Example: a failed ``openat`` from pid 42 is about 60 bytes::

    [1, b'\\x00..', 'h1', 42, 42, 1000, 1700000000000001000, 5300, 7, 0,
     257, 'openat', -2, {'path': '/nope', 'flags': 0}, None, 0, 4]

Errors (one type, so callers catch one thing)::

    ValueError
      └── DecodeError        -- bad bytes, wrong types, unknown version/kind, oversized values;
                                the message names the position ("events[3].pid: ...") and the problem.

Decoding never returns a partially decoded batch: either every event validates or DecodeError is raised.
"""

from __future__ import annotations

import enum
import sys
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, fields
from typing import Any, Final

import msgpack

from sysweave.schemas import wirecols
from sysweave.schemas.events import (
    EVENT_TYPES,
    KIND_OF,
    CausalStamp,
    Event,
    EventHeader,
    EventKind,
    SyscallAggregate,
    SyscallSpan,
)
from sysweave.schemas.wirechecks import (
    MAX_ARRAY,
    MAX_BATCH_BYTES,
    MAX_BYTES,
    MAX_EVENTS_PER_BATCH,
    MAX_MAP,
    MAX_STR,
    PLAIN_CHECKS,
    SIMPLE,
    Check,
    DecodeError,
    check_args,
    check_int,
    checker_for,
    fail,
    plain_args,
)

__all__ = [
    "COLUMN_KINDS",
    "MAX_ARRAY",
    "MAX_BATCH_BYTES",
    "MAX_BYTES",
    "MAX_EVENTS_PER_BATCH",
    "MAX_MAP",
    "MAX_STR",
    "SCHEMA_VERSION",
    "Batch",
    "Check",
    "DecodeError",
    "decode_batch",
    "decode_batch_rows",
    "decode_event",
    "encode_batch",
    "encode_event",
    "event_from_wire",
    "event_to_wire",
    "event_to_wire_stamped",
    "events_to_wire",
]

SCHEMA_VERSION: Final = 1


@dataclass(frozen=True, slots=True)
class Batch:
    producer_id: int
    sequence: int
    created_wall_ns: int
    events: tuple[Event, ...]
    version: int = SCHEMA_VERSION


_HEADER_FIELDS = ("event_id", "host_id", "pid", "tid", "mono_ns", "wall_ns", "duration_ns")
_HEADER_LEN = 1 + len(_HEADER_FIELDS) + 2  # kind + header + lamport + hlc


@dataclass(frozen=True, slots=True)
class _Layout:
    cls: type
    names: tuple[str, ...]
    checks: tuple[Check, ...]
    enums: frozenset[str]
    plain: tuple[type | None, ...]  # the exact type of a plain int/str/bytes/bool field, else None


def _layout(cls: type) -> _Layout:
    hints = typing.get_type_hints(cls)
    names = tuple(f.name for f in fields(cls) if f.name != "h")
    checks = tuple(checker_for(hints[n], n) for n in names)
    enums = frozenset(n for n in names if isinstance(hints[n], type) and issubclass(hints[n], enum.Enum))
    # msgpack.unpackb already bounds ints to 64 bits and str/bin lengths to MAX_STR/MAX_BYTES, so for plain
    # fields the exact type is the whole check
    plain = tuple(PLAIN_CHECKS.get(c) for c in checks)
    return _Layout(cls, names, checks, enums, plain)


_HEADER_CHECKS: tuple[Check, ...] = tuple(
    checker_for(typing.get_type_hints(EventHeader)[n], n) for n in _HEADER_FIELDS
) + (check_int, check_int)
_LAYOUTS: dict[int, _Layout] = {int(k): _layout(t) for k, t in EVENT_TYPES.items()}
_LAYOUT_BY_TYPE: dict[type, tuple[int, _Layout]] = {t: (int(KIND_OF[t]), _LAYOUTS[int(KIND_OF[t])]) for t in KIND_OF}


# strings repeated across a batch's events, shared instead of one copy per event (~100 bytes per span held)
_INTERNED = frozenset({(SyscallSpan, "name"), (SyscallAggregate, "name")})


def _slot_setters(scope: dict[str, Any], name: str, cls: type, prefix: str) -> None:
    """``scope[prefix + str(i)]``: the setter of ``cls``'s i-th slot (fields in declaration order), and ``new``."""
    names = [f.name for f in fields(cls)]
    assert names == list(getattr(cls, "__slots__", ())), cls  # a slotted dataclass: one slot per field, in order
    scope[name], scope["new"] = cls, object.__new__
    for i, n in enumerate(names):
        scope[f"{prefix}{i}"] = cls.__dict__[n].__set__


def _compile(kind: int, lay: _Layout) -> tuple[Callable[[list[Any]], Event], Callable[[Any, int, int], list[Any]]]:
    """Per event type, a decoder of a validated-length positional array (exact-type checks inline, raising
    DecodeError without a message on anything else: the caller redoes the checks with named paths) and an
    encoder taking the causal stamp separately (``event_to_wire_stamped``). Generated once from the
    dataclass's own field names, like ``dataclasses`` does: one call per event instead of a loop per field."""
    head = "h = e.h\n    return [K, h.event_id, h.host_id, h.pid, h.tid, h.mono_ns, h.wall_ns, h.duration_ns, lamport, hlc"
    enc = "".join(f", int(e.{n})" if n in lay.enums else f", e.{n}" for n in lay.names)
    scope: dict[str, Any] = {"K": kind, "C": lay.cls, "H": EventHeader, "S": CausalStamp, "DecodeError": DecodeError,
                             "plain_args": plain_args, "str_": str, "bytes_": bytes, "int_": int, "bool_": bool,
                             "dict_": dict}
    checks, values = [], []
    scope["intern"] = sys.intern
    for i, (n, t, chk) in enumerate(zip(lay.names, lay.plain, lay.checks)):
        v = f"r[{_HEADER_LEN + i}]"
        if t is not None:
            checks.append(f"type({v}) is not {t.__name__}_")
            values.append(f"intern({v})" if (lay.cls, n) in _INTERNED else v)
        elif chk is check_args:
            scope[f"c{i}"] = chk
            values.append(f"({v} if type({v}) is dict_ and plain_args({v}) else c{i}({v}, ''))")
        else:
            scope[f"c{i}"] = chk
            values.append(f"c{i}({v}, '')")
    cond = " or ".join(["type(r[1]) is not bytes_", "len(r[1]) != 16", "type(r[2]) is not str_",
                        *(f"type(r[{i}]) is not int_" for i in range(3, _HEADER_LEN)), *checks])
    # objects built by setting their slots directly: a frozen dataclass's __init__ goes through
    # object.__setattr__ once per field, which costs about twice as much (the events have no __post_init__)
    _slot_setters(scope, "S", CausalStamp, "s")
    _slot_setters(scope, "H", EventHeader, "h")
    _slot_setters(scope, "C", lay.cls, "o")  # (c0, c1, ...: the field checkers)
    header = ("r[1]", "intern(r[2])", "r[3]", "r[4]", "r[5]", "r[6]", "r[7]", "s")
    body = ("    s = new(S)\n    s0(s, r[8])\n    s1(s, r[9])\n    h = new(H)\n"
            + "".join(f"    h{i}(h, {v})\n" for i, v in enumerate(header))
            + "    o = new(C)\n    o0(o, h)\n"
            + "".join(f"    o{i + 1}(o, {v})\n" for i, v in enumerate(values)) + "    return o\n")
    src = (f"def encode(e, lamport, hlc):\n    {head}{enc}]\n\n"
           f"def decode(r):\n    if {cond}:\n        raise DecodeError('')\n{body}")
    exec(src, scope)  # source built from the dataclass's own field names
    return scope["decode"], scope["encode"]


_FAST: dict[int, tuple[Callable[[list[Any]], Event], Callable[[Any, int, int], list[Any]]]] = {
    k: _compile(k, lay) for k, lay in _LAYOUTS.items()}
_FAST_BY_KIND: dict[int, tuple[int, Callable[[list[Any]], Event]]] = {
    k: (_HEADER_LEN + len(lay.names), _FAST[k][0]) for k, lay in _LAYOUTS.items()}
def _never(raw: list[Any]) -> Event:
    raise DecodeError("no event kind")  # pragma: no cover - no event has -1 elements


_NO_KIND: tuple[int, Callable[[list[Any]], Event]] = (-1, _never)
_ENCODERS: dict[type, Callable[[Any, int, int], list[Any]]] = {lay.cls: _FAST[k][1] for k, lay in _LAYOUTS.items()}


def _field_spec(lay: _Layout, name: str, plain: type | None, check: Check) -> wirecols.FieldSpec:
    if plain is not None:
        return wirecols.FieldSpec(plain=plain, intern=sys.intern if (lay.cls, name) in _INTERNED else None)
    if check is check_args:
        return wirecols.FieldSpec(args=True, check=check)
    hint = typing.get_type_hints(lay.cls)[name]
    inner = [p for p in typing.get_args(hint) if p is not type(None)]
    if typing.get_origin(hint) in (typing.Union, types.UnionType) and len(inner) == 1 and inner[0] in SIMPLE:
        return wirecols.FieldSpec(plain=inner[0], optional=True)  # bytes | None, int | None
    if name in lay.enums:
        return wirecols.FieldSpec(enum={int(m): m for m in hint})
    return wirecols.FieldSpec(check=check)


# the columnar decoder of each event kind (``decode_batch``'s path; ``wirecols``)
COLUMN_KINDS: dict[int, wirecols.ColumnKind] = {
    k: wirecols.ColumnKind(k, lay.cls, EventHeader, CausalStamp, [
        _field_spec(lay, n, t, c) for n, t, c in zip(lay.names, lay.plain, lay.checks)], sys.intern, MAX_MAP)
    for k, lay in _LAYOUTS.items()}


def event_to_wire(event: Event) -> list[Any]:
    """The positional array of one event (msgpack-ready)."""
    st = event.h.stamp
    return _ENCODERS[type(event)](event, st.lamport, st.hlc)


def event_to_wire_stamped(event: Event, lamport: int, hlc: int) -> list[Any]:
    """``event_to_wire(event)`` with its causal stamp replaced by (``lamport``, ``hlc``) — what a rebuilt
    event would encode to, without rebuilding it (the stream worker restamps every event it emits)."""
    return _ENCODERS[type(event)](event, lamport, hlc)


def events_to_wire(events: Iterable[Event], stamps: Mapping[bytes, tuple[int, int]]) -> list[list[Any]]:
    """``event_to_wire`` of every event, with the stamp (lamport, hlc) ``stamps`` gives its id where it gives one
    (the stream worker's restamped emission, ``pipeline.wire``): one loop, no event rebuilt. (Row by row: the
    compiled per-type encoder is faster here than ``wirecols.encode_rows``'s attrgetter columns on 3.11.)"""
    encoders, get = _ENCODERS, stamps.get
    out: list[list[Any]] = []
    append = out.append
    for e in events:
        h = e.h
        st = get(h.event_id)
        if st is None:
            append(encoders[type(e)](e, h.stamp.lamport, h.stamp.hlc))
        else:
            append(encoders[type(e)](e, st[0], st[1]))
    return out


def event_from_wire(raw: Any, path: str = "event") -> Event:
    """Validate and build one event from its positional array; raise DecodeError naming ``path``."""
    if type(raw) is not list or not raw:
        raise fail(path, "an event array", raw)
    kind = raw[0]
    lay = _LAYOUTS.get(kind) if type(kind) is int else None
    if lay is None:
        raise DecodeError(f"{path}[0]: unknown event kind {kind!r}; known kinds are "
                          f"{[f'{k.value}={k.name}' for k in EventKind]} (a newer producer? upgrade this consumer)")
    want = _HEADER_LEN + len(lay.names)
    if len(raw) != want:
        raise DecodeError(f"{path}: a {lay.cls.__name__} has {want} elements, got {len(raw)}")
    try:
        return _FAST[kind][0](raw)  # exact types only (see _Layout.plain); paths are built only on failure
    except DecodeError:
        pass
    hv = [chk(raw[i + 1], f"{path}.{n}") for i, (n, chk) in
          enumerate(zip((*_HEADER_FIELDS, "lamport", "hlc"), _HEADER_CHECKS))]
    values = [chk(raw[_HEADER_LEN + i], f"{path}.{n}") for i, (n, chk) in enumerate(zip(lay.names, lay.checks))]
    header = EventHeader(hv[0], hv[1], hv[2], hv[3], hv[4], hv[5], hv[6], CausalStamp(hv[7], hv[8]))
    return lay.cls(header, *values)  # type: ignore[no-any-return]


def _unpack(data: bytes, what: str) -> Any:
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise DecodeError(f"{what}: expected bytes, got {type(data).__name__}")
    if len(data) > MAX_BATCH_BYTES:
        raise DecodeError(f"{what}: {len(data)} bytes exceed the limit of {MAX_BATCH_BYTES}")
    try:
        return msgpack.unpackb(
            data, raw=False, strict_map_key=True, use_list=True,
            max_str_len=MAX_STR, max_bin_len=MAX_BYTES, max_array_len=MAX_EVENTS_PER_BATCH,
            max_map_len=MAX_MAP, max_ext_len=0,
        )
    except msgpack.ExtraData as exc:
        raise DecodeError(f"{what}: trailing bytes after the message ({exc})") from exc
    except UnicodeDecodeError as exc:
        raise DecodeError(f"{what}: a string is not valid UTF-8 at byte {exc.start}") from exc
    except (ValueError, TypeError, msgpack.StackError, msgpack.FormatError) as exc:
        # OutOfData (truncated), FormatError, limits, unhashable/non-string map keys ...
        raise DecodeError(f"{what}: not valid msgpack ({type(exc).__name__}: {exc or 'truncated'})") from exc


def encode_batch(batch: Batch) -> bytes:
    return msgpack.packb(
        [batch.version, batch.producer_id, batch.sequence, batch.created_wall_ns,
         [event_to_wire(e) for e in batch.events]],
        use_bin_type=True,
    )


def decode_batch(data: bytes) -> Batch:
    """One batch's events decoded column by column (``wirecols``); anything the columns do not take whole is
    decoded row by row (``decode_batch_rows``: the same events, or the DecodeError naming the position)."""
    return _decode_envelope(data, _events_columns)


def decode_batch_rows(data: bytes) -> Batch:
    """``decode_batch`` one event at a time (the reference the columnar decode is tested against)."""
    return _decode_envelope(data, _events)


def _decode_envelope(data: bytes, events: Callable[[list[Any]], tuple[Event, ...]]) -> Batch:
    raw = _unpack(data, "batch")
    if type(raw) is not list or len(raw) != 5:
        raise fail("batch", "a 5-element envelope [version, producer, sequence, created_ns, events]", raw)
    version = raw[0]
    if version != SCHEMA_VERSION or type(version) is not int:
        raise DecodeError(f"batch.version: unsupported schema version {version!r} (this build reads "
                          f"{SCHEMA_VERSION}); upgrade the consumer or downgrade the producer")
    producer, seq, created = (check_int(raw[i], f"batch.{n}") for i, n in
                              ((1, "producer_id"), (2, "sequence"), (3, "created_wall_ns")))
    if type(raw[4]) is not list:
        raise fail("batch.events", "an array of events", raw[4])
    return Batch(producer, seq, created, events(raw[4]), version)


def _events_columns(raws: list[Any]) -> tuple[Event, ...]:
    out = wirecols.decode_columns(raws, COLUMN_KINDS)
    return _events(raws) if out is None else tuple(out)


def _events(raws: list[Any]) -> tuple[Event, ...]:
    """Every event of a batch: the compiled decoder first (no per-event path string), ``event_from_wire`` with
    the event's position for anything it does not take (so errors name it, as before)."""
    out: list[Event] = []
    append, fast = out.append, _FAST_BY_KIND
    for i, e in enumerate(raws):
        try:
            if type(e) is list and e and type(e[0]) is int:
                n, decode = fast.get(e[0], _NO_KIND)
                if len(e) == n:
                    append(decode(e))
                    continue
        except DecodeError:
            pass
        append(event_from_wire(e, f"batch.events[{i}]"))
    return tuple(out)


def encode_event(event: Event) -> bytes:
    """One event on its own (SDK datagrams): ``[schema_version, event]``."""
    return msgpack.packb([SCHEMA_VERSION, event_to_wire(event)], use_bin_type=True)


def decode_event(data: bytes) -> Event:
    raw = _unpack(data, "datagram")
    if type(raw) is not list or len(raw) != 2:
        raise fail("datagram", "[version, event]", raw)
    if raw[0] != SCHEMA_VERSION or type(raw[0]) is not int:
        raise DecodeError(f"datagram.version: unsupported schema version {raw[0]!r} (this build reads {SCHEMA_VERSION})")
    return event_from_wire(raw[1], "datagram.event")
