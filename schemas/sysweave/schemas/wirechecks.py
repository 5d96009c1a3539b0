"""The checks of decoded wire values (``codec``'s contract, one place): exact types, sizes, limits.

Every check takes the value and its position (``"events[3].pid"``; ``""`` on the fast paths, where a failure
is retried with the position) and returns the value to store, or raises :class:`DecodeError` naming the
position and what was expected. :func:`checker_for` derives the check of an event field from its type hint.
"""

from __future__ import annotations

import enum
import types
import typing
from collections.abc import Callable
from typing import Any, Final

from sysweave.schemas.errors import SchemaError

__all__ = [
    "MAX_ARRAY",
    "MAX_BATCH_BYTES",
    "MAX_BYTES",
    "MAX_EVENTS_PER_BATCH",
    "MAX_MAP",
    "MAX_STR",
    "PLAIN_CHECKS",
    "SIMPLE",
    "Check",
    "DecodeError",
    "check_args",
    "check_bool",
    "check_bytes",
    "check_event_id",
    "check_int",
    "check_str",
    "checker_for",
    "fail",
    "plain_args",
]

MAX_BATCH_BYTES: Final = 16 * 1024 * 1024
MAX_EVENTS_PER_BATCH: Final = 200_000
MAX_STR: Final = 64 * 1024  # paths are <= 4096; argv strings and names stay far below this
MAX_BYTES: Final = 1024 * 1024  # payload capture is capped well below this
MAX_ARRAY: Final = 4096  # argv entries, histogram buckets, grid dims
MAX_MAP: Final = 64  # decoded syscall arguments
_I64 = (-(2**63), 2**64 - 1)  # msgpack ints; u64 allowed for ids and counters


class DecodeError(SchemaError):
    """Bytes that are not a valid sysweave batch or event. The message says what and where."""


Check = Callable[[Any, str], Any]


def fail(path: str, want: str, got: Any) -> DecodeError:
    shown = repr(got)
    if len(shown) > 60:
        shown = shown[:57] + "..."
    return DecodeError(f"{path}: expected {want}, got {type(got).__name__} {shown}")


def check_int(v: Any, path: str) -> int:
    if type(v) is not int or not _I64[0] <= v <= _I64[1]:
        raise fail(path, "an integer", v)
    return v


def check_str(v: Any, path: str) -> str:
    if type(v) is not str:
        raise fail(path, "a string", v)
    if len(v) > MAX_STR:
        raise DecodeError(f"{path}: string of {len(v)} characters exceeds the limit of {MAX_STR}")
    return v


def check_bytes(v: Any, path: str) -> bytes:
    if type(v) is not bytes:
        raise fail(path, "bytes", v)
    if len(v) > MAX_BYTES:
        raise DecodeError(f"{path}: {len(v)} bytes exceed the limit of {MAX_BYTES}")
    return v


def check_bool(v: Any, path: str) -> bool:
    if type(v) is not bool:
        raise fail(path, "a boolean", v)
    return v


def check_event_id(v: Any, path: str) -> bytes:
    if type(v) is not bytes or len(v) != 16:
        raise fail(path, "a 16-byte event id", v)
    return v


SIMPLE: dict[Any, Check] = {int: check_int, str: check_str, bytes: check_bytes, bool: check_bool}


def _check_arg(v: Any, path: str) -> Any:
    if v is None or type(v) is bool:
        return v
    if type(v) in SIMPLE:
        return SIMPLE[type(v)](v, path)
    if type(v) is list:
        if len(v) > MAX_ARRAY:
            raise DecodeError(f"{path}: array of {len(v)} exceeds the limit of {MAX_ARRAY}")
        if all(type(x) is int for x in v):
            return tuple(check_int(x, path) for x in v)
        return tuple(check_str(x, path and f"{path}[{i}]") for i, x in enumerate(v))
    raise fail(path, "an argument value (int, str, bytes, bool, nil or array)", v)


def check_args(v: Any, path: str) -> dict[str, Any]:
    if type(v) is not dict:
        raise fail(path, "a map of arguments", v)
    if len(v) > MAX_MAP:
        raise DecodeError(f"{path}: {len(v)} arguments exceed the limit of {MAX_MAP}")
    return {check_str(k, path): _check_arg(x, path and f"{path}.{k}") for k, x in v.items()}


def _tuple_of(inner: Check) -> Check:
    def check(v: Any, path: str) -> tuple[Any, ...]:
        if type(v) is not list:
            raise fail(path, "an array", v)
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
            raise fail(path, f"one of {sorted(valid)} ({cls.__name__})", v)
        return valid[v]

    return check


def checker_for(hint: Any, name: str) -> Check:
    """Derive the wire check of one dataclass field from its type hint (one place, all event types)."""
    if name in ("src", "dst", "event_id"):
        return check_event_id
    if name == "args" or typing.get_origin(hint) is dict:  # syscall args, event attrs: dict[str, ArgValue]
        return check_args
    if hint in SIMPLE:
        return SIMPLE[hint]
    if isinstance(hint, type) and issubclass(hint, enum.IntEnum):
        return _enum(hint)
    origin, params = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType) and type(None) in params:
        (inner,) = [p for p in params if p is not type(None)]
        return _optional(checker_for(inner, name))
    if origin is tuple and len(params) == 2 and params[1] is Ellipsis:
        return _tuple_of(checker_for(params[0], name))
    raise TypeError(f"no wire mapping for field {name}: {hint!r}")  # a programming error, caught by tests


_SCALAR_ARGS = frozenset({int, str, bytes, bool, type(None)})


def plain_args(v: dict[Any, Any]) -> bool:
    """True when every key is a string and every value a scalar: then msgpack's own limits (64-bit ints,
    MAX_STR, MAX_BYTES, MAX_MAP) are the whole check and the decoded dict is kept as it is (no copy)."""
    if len(v) > MAX_MAP:
        return False
    for k, x in v.items():  # noqa: SIM110 - a plain loop: all() over a generator costs more per event
        if type(k) is not str or type(x) not in _SCALAR_ARGS:
            return False
    return True


PLAIN_CHECKS: dict[Check, type] = {check_int: int, check_str: str, check_bytes: bytes, check_bool: bool}
