"""The SDK's datagrams in msgpack, written by hand: only the few forms the schema codec reads (standard library
only; ``docs/sdk.md`` documents the bytes). Private to ``sysweave.sdk``: its names may change with it."""

from __future__ import annotations

import struct
from collections.abc import Iterable
from typing import Any

__all__ = [
    "COMPUTE_PREFIX", "ELEMENTS", "KIND_COMPUTE", "KIND_LOST", "KIND_MARK", "KIND_TRANSPILER", "MAX_ATTRS", "PREFIX",
    "SCHEMA_VERSION", "TIMES", "encode_int", "encode_map", "encode_str", "encode_strs",
]

SCHEMA_VERSION = 1
KIND_COMPUTE, KIND_TRANSPILER, KIND_LOST, KIND_MARK = 5, 6, 10, 15
_FIELDS = {KIND_COMPUTE: 7, KIND_TRANSPILER: 9, KIND_LOST: 3, KIND_MARK: 2}  # each kind's own fields after the header
MAX_ATTRS = 64  # the codec's map limit; more attributes are cut and the cut counted in "sdk.attrs_cut"


def _array_header(n: int) -> bytes:
    return bytes([0x90 | n]) if n < 16 else b"\xdc" + struct.pack(">H", n)


def _prefix(kind: int) -> bytes:
    """[version, [kind, event_id=16 zero bytes, host_id="", pid=0, ..."""
    return b"\x92" + bytes([SCHEMA_VERSION]) + _array_header(10 + _FIELDS[kind]) + bytes([kind]) + b"\xc4\x10" + \
        bytes(16) + b"\xa0\x00"


PREFIX = {k: _prefix(k) for k in _FIELDS}  # each kind's datagram up to its thread id
COMPUTE_PREFIX = PREFIX[KIND_COMPUTE]
# tid (u32), mono_ns (u64), wall_ns = 0, duration_ns (u64), lamport = 0, hlc = 0
TIMES = struct.Struct(">BIBQBBQBB")
ELEMENTS = struct.Struct(">BQ").pack  # elements: always uint 64 (0xcf), one pack
_STR_CACHE: dict[str, bytes] = {}


def encode_int(v: int) -> bytes:
    if 0 <= v < 128:
        return bytes([v])
    if 0 <= v < 2**64:
        return b"\xcf" + struct.pack(">Q", v)
    if -(2**63) <= v < 0:
        return b"\xd3" + struct.pack(">q", v)
    return encode_str(str(v))  # beyond 64 bits: as text, not wrapped


def encode_str(s: str) -> bytes:
    cached = _STR_CACHE.get(s)
    if cached is not None:
        return cached
    b = s.encode("utf-8", "replace")
    n = len(b)
    if n < 32:
        out = bytes([0xA0 | n]) + b
    elif n < 256:
        out = b"\xd9" + bytes([n]) + b
    elif n < 65536:
        out = b"\xda" + struct.pack(">H", n) + b
    else:
        out = b"\xdb" + struct.pack(">I", n) + b
    if len(_STR_CACHE) < 4096 and n < 256:
        _STR_CACHE[s] = out
    return out


def _bin(b: bytes) -> bytes:
    n = len(b)
    if n < 256:
        return b"\xc4" + bytes([n]) + b
    if n < 65536:
        return b"\xc5" + struct.pack(">H", n) + b
    return b"\xc6" + struct.pack(">I", n) + b


def _value(v: Any) -> bytes:
    """An attribute value as the codec's ArgValue: nil, bool, int, str, bytes, array of ints or of strs."""
    if v is None:
        return b"\xc0"
    if v is True:
        return b"\xc3"
    if v is False:
        return b"\xc2"
    if isinstance(v, int):
        return encode_int(int(v))
    if isinstance(v, str):
        return encode_str(v)
    if isinstance(v, (bytes, bytearray, memoryview)):
        return _bin(bytes(v))
    if isinstance(v, (list, tuple)):
        items = list(v)[:4096]
        if all(isinstance(x, int) and not isinstance(x, bool) and -(2**63) <= x < 2**64 for x in items):
            return _array_header(len(items)) + b"".join(encode_int(x) for x in items)
        return _array_header(len(items)) + b"".join(encode_str(x if isinstance(x, str) else repr(x)) for x in items)
    return encode_str(repr(v) if isinstance(v, float) else str(v))


def encode_map(attrs: dict[str, Any] | None) -> bytes:
    """Attributes as the codec's map of str to ArgValue (at most MAX_ATTRS entries)."""
    if not attrs:
        return b"\x80"
    items = list(attrs.items())
    if len(items) > MAX_ATTRS:
        items = items[:MAX_ATTRS - 1] + [("sdk.attrs_cut", len(items) - (MAX_ATTRS - 1))]
    n = len(items)
    head = bytes([0x80 | n]) if n < 16 else b"\xde" + struct.pack(">H", n)
    return head + b"".join(encode_str(str(k)) + _value(v) for k, v in items)


def encode_strs(values: Iterable[str]) -> bytes:
    items = [str(x) for x in values]
    return _array_header(len(items)) + b"".join(encode_str(x) for x in items)
