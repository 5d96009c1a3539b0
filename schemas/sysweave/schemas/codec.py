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

from sysweave.schemas.errors import SchemaError
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

__all__ = [
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
    "decode_event",
    "encode_batch",
    "encode_event",
    "event_from_wire",
    "event_to_wire",
    "event_to_wire_stamped",
    "events_to_wire",
]

SCHEMA_VERSION: Final = 1
MAX_BATCH_BYTES: Final = 16 * 1024 * 1024
MAX_EVENTS_PER_BATCH: Final = 200_000
MAX_STR: Final = 64 * 1024  # paths are <= 4096; argv strings and names stay far below this
MAX_BYTES: Final = 1024 * 1024  # payload capture is capped well below this
MAX_ARRAY: Final = 4096  # argv entries, histogram buckets, grid dims
MAX_MAP: Final = 64  # decoded syscall arguments
_I64 = (-(2**63), 2**64 - 1)  # msgpack ints; u64 allowed for ids and counters


class DecodeError(SchemaError):
    """Bytes that are not a valid sysweave batch or event. The message says what and where."""


@dataclass(frozen=True, slots=True)
class Batch:
    producer_id: int
    sequence: int
    created_wall_ns: int
    events: tuple[Event, ...]
    version: int = SCHEMA_VERSION


Check = Callable[[Any, str], Any]


def _fail(path: str, want: str, got: Any) -> DecodeError:
    shown = repr(got)
    if len(shown) > 60:
        shown = shown[:57] + "..."
    return DecodeError(f"{path}: expected {want}, got {type(got).__name__} {shown}")


def _check_int(v: Any, path: str) -> int:
    if type(v) is not int or not _I64[0] <= v <= _I64[1]:
        raise _fail(path, "an integer", v)
    return v


def _check_str(v: Any, path: str) -> str:
    if type(v) is not str:
        raise _fail(path, "a string", v)
    if len(v) > MAX_STR:
        raise DecodeError(f"{path}: string of {len(v)} characters exceeds the limit of {MAX_STR}")
    return v


def _check_bytes(v: Any, path: str) -> bytes:
    if type(v) is not bytes:
        raise _fail(path, "bytes", v)
    if len(v) > MAX_BYTES:
        raise DecodeError(f"{path}: {len(v)} bytes exceed the limit of {MAX_BYTES}")
    return v


def _check_bool(v: Any, path: str) -> bool:
    if type(v) is not bool:
        raise _fail(path, "a boolean", v)
    return v


def _check_event_id(v: Any, path: str) -> bytes:
    if type(v) is not bytes or len(v) != 16:
        raise _fail(path, "a 16-byte event id", v)
    return v


_SIMPLE: dict[Any, Check] = {int: _check_int, str: _check_str, bytes: _check_bytes, bool: _check_bool}


def _check_arg(v: Any, path: str) -> Any:
    if v is None or type(v) is bool:
        return v
    if type(v) in _SIMPLE:
        return _SIMPLE[type(v)](v, path)
    if type(v) is list:
        if len(v) > MAX_ARRAY:
            raise DecodeError(f"{path}: array of {len(v)} exceeds the limit of {MAX_ARRAY}")
        if all(type(x) is int for x in v):
            return tuple(_check_int(x, path) for x in v)
        return tuple(_check_str(x, path and f"{path}[{i}]") for i, x in enumerate(v))
    raise _fail(path, "an argument value (int, str, bytes, bool, nil or array)", v)


def _check_args(v: Any, path: str) -> dict[str, Any]:
    if type(v) is not dict:
        raise _fail(path, "a map of arguments", v)
    if len(v) > MAX_MAP:
        raise DecodeError(f"{path}: {len(v)} arguments exceed the limit of {MAX_MAP}")
    return {_check_str(k, path): _check_arg(x, path and f"{path}.{k}") for k, x in v.items()}


def _tuple_of(inner: Check) -> Check:
    def check(v: Any, path: str) -> tuple[Any, ...]:
        if type(v) is not list:
            raise _fail(path, "an array", v)
        if len(v) > MAX_ARRAY:
            raise DecodeError(f"{path}: array of {len(v)} exceeds the limit of {MAX_ARRAY}")
        return tuple(inner(x, path and f"{path}[{i}]") for i, x in enumerate(v))

    return check


def _optional(inner: Check) -> Check:
    return lambda v, path: None if v is None else inner(v, path)


def _enum(cls: type[enum.IntEnum]) -> Check:
    valid = {m.value: m for m in cls}

    def check(v: Any, path: str) -> enum.IntEnum:
        if type(v) is not int or v not in valid:
            raise _fail(path, f"one of {sorted(valid)} ({cls.__name__})", v)
        return valid[v]

    return check


def _checker_for(hint: Any, name: str) -> Check:
    """Derive the wire check of one dataclass field from its type hint (one place, all event types)."""
    if name in ("src", "dst", "event_id"):
        return _check_event_id
    if name == "args" or typing.get_origin(hint) is dict:  # syscall args, event attrs: dict[str, ArgValue]
        return _check_args
    if hint in _SIMPLE:
        return _SIMPLE[hint]
    if isinstance(hint, type) and issubclass(hint, enum.IntEnum):
        return _enum(hint)
    origin, params = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType) and type(None) in params:
        (inner,) = [p for p in params if p is not type(None)]
        return _optional(_checker_for(inner, name))
    if origin is tuple and len(params) == 2 and params[1] is Ellipsis:
        return _tuple_of(_checker_for(params[0], name))
    raise TypeError(f"no wire mapping for field {name}: {hint!r}")  # a programming error, caught by tests


_HEADER_FIELDS = ("event_id", "host_id", "pid", "tid", "mono_ns", "wall_ns", "duration_ns")
_HEADER_LEN = 1 + len(_HEADER_FIELDS) + 2  # kind + header + lamport + hlc


@dataclass(frozen=True, slots=True)
class _Layout:
    cls: type
    names: tuple[str, ...]
    checks: tuple[Check, ...]
    enums: frozenset[str]
    plain: tuple[type | None, ...]  # the exact type of a plain int/str/bytes/bool field, else None


_PLAIN_CHECKS: dict[Check, type] = {_check_int: int, _check_str: str, _check_bytes: bytes, _check_bool: bool}


def _layout(cls: type) -> _Layout:
    hints = typing.get_type_hints(cls)
    names = tuple(f.name for f in fields(cls) if f.name != "h")
    checks = tuple(_checker_for(hints[n], n) for n in names)
    enums = frozenset(n for n in names if isinstance(hints[n], type) and issubclass(hints[n], enum.Enum))
    # msgpack.unpackb already bounds ints to 64 bits and str/bin lengths to MAX_STR/MAX_BYTES, so for plain
    # fields the exact type is the whole check
    plain = tuple(_PLAIN_CHECKS.get(c) for c in checks)
    return _Layout(cls, names, checks, enums, plain)


_HEADER_CHECKS: tuple[Check, ...] = tuple(
    _checker_for(typing.get_type_hints(EventHeader)[n], n) for n in _HEADER_FIELDS
) + (_check_int, _check_int)
_LAYOUTS: dict[int, _Layout] = {int(k): _layout(t) for k, t in EVENT_TYPES.items()}
_LAYOUT_BY_TYPE: dict[type, tuple[int, _Layout]] = {t: (int(KIND_OF[t]), _LAYOUTS[int(KIND_OF[t])]) for t in KIND_OF}


_SCALAR_ARGS = frozenset({int, str, bytes, bool, type(None)})


def _plain_args(v: dict[Any, Any]) -> bool:
    """True when every key is a string and every value a scalar: then msgpack's own limits (64-bit ints,
    MAX_STR, MAX_BYTES, MAX_MAP) are the whole check and the decoded dict is kept as it is (no copy)."""
    if len(v) > MAX_MAP:
        return False
    for k, x in v.items():  # noqa: SIM110 - a plain loop: all() over a generator costs more per event
        if type(k) is not str or type(x) not in _SCALAR_ARGS:
            return False
    return True


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
                             "plain_args": _plain_args, "str_": str, "bytes_": bytes, "int_": int, "bool_": bool,
                             "dict_": dict}
    checks, values = [], []
    scope["intern"] = sys.intern
    for i, (n, t, chk) in enumerate(zip(lay.names, lay.plain, lay.checks)):
        v = f"r[{_HEADER_LEN + i}]"
        if t is not None:
            checks.append(f"type({v}) is not {t.__name__}_")
            values.append(f"intern({v})" if (lay.cls, n) in _INTERNED else v)
        elif chk is _check_args:
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
    (the stream worker's restamped emission, ``pipeline.wire``): one loop, no event rebuilt."""
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
        raise _fail(path, "an event array", raw)
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
    raw = _unpack(data, "batch")
    if type(raw) is not list or len(raw) != 5:
        raise _fail("batch", "a 5-element envelope [version, producer, sequence, created_ns, events]", raw)
    version = raw[0]
    if version != SCHEMA_VERSION or type(version) is not int:
        raise DecodeError(f"batch.version: unsupported schema version {version!r} (this build reads "
                          f"{SCHEMA_VERSION}); upgrade the consumer or downgrade the producer")
    producer, seq, created = (_check_int(raw[i], f"batch.{n}") for i, n in
                              ((1, "producer_id"), (2, "sequence"), (3, "created_wall_ns")))
    if type(raw[4]) is not list:
        raise _fail("batch.events", "an array of events", raw[4])
    return Batch(producer, seq, created, _events(raw[4]), version)


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
        raise _fail("datagram", "[version, event]", raw)
    if raw[0] != SCHEMA_VERSION or type(raw[0]) is not int:
        raise DecodeError(f"datagram.version: unsupported schema version {raw[0]!r} (this build reads {SCHEMA_VERSION})")
    return event_from_wire(raw[1], "datagram.event")
