"""ClickHouse's Native format, written with the standard library only: the embedded store's part files.

The capture path (``sysweave trace``) stores its trace without importing chdb, pyarrow or numpy (each costs
0.2-0.5 s of start-up): columns become Native blocks, which ClickHouse (chdb's ``file(..., Native)``) reads
with no conversion. Layout of one block (no block info: the file form, protocol revision 0)::

    varuint columns, varuint rows, then per column: String name, String type, the column's data
    UInt*/Int*/Float*  little-endian, fixed width            String       varuint length + bytes, per value
    FixedString(N)     N bytes per value (zero-padded)        Array(T)     UInt64 end offsets, then T's data
    Nullable(T)        UInt8 null map, then T's data (a default where null)

A file is a sequence of blocks (:func:`write_blocks`). Values are the wire form of ``schemas.columns`` (Strings
as bytes, integers as int, numpy arrays accepted where they come).
"""

from __future__ import annotations

import sys
from array import array
from collections.abc import Iterable, Sequence
from typing import IO, Any

from sysweave.schemas.rows import Column

__all__ = ["encode_block", "encode_column", "varuint", "write_blocks"]

_FIXED = {"UInt8": "B", "UInt16": "H", "UInt32": "I", "UInt64": "Q", "Int8": "b", "Int16": "h", "Int32": "i",
          "Int64": "q", "Float32": "f", "Float64": "d"}
_BIG_ENDIAN = sys.byteorder == "big"
_ONE_BYTE = [bytes((n,)) for n in range(128)]


def varuint(n: int) -> bytes:
    """LEB128, as ClickHouse writes lengths and counts."""
    if n < 128:
        return _ONE_BYTE[n]
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _fixed(code: str, values: Any) -> bytes:
    if hasattr(values, "dtype"):  # a numpy array (columns(arrays=True)): its bytes, little-endian
        return bytes(values.astype(values.dtype.newbyteorder("<"), copy=False).tobytes())
    a = array(code, values)
    if _BIG_ENDIAN:
        a.byteswap()
    return a.tobytes()


def _strings(values: Sequence[bytes]) -> bytes:
    lengths = list(map(len, values))
    if lengths and max(lengths) < 128:  # the common case: one length byte each, joined in C
        return b"".join(map(bytes.__add__, map(_ONE_BYTE.__getitem__, lengths), values))
    return b"".join(varuint(n) + v for n, v in zip(lengths, values))


def encode_column(typ: str, values: Sequence[Any]) -> bytes:
    """One column's data in Native form (``typ`` as the DDL spells it, LowCardinality aside)."""
    if typ in _FIXED:
        return _fixed(_FIXED[typ], values)
    if typ == "String":
        return _strings(values)
    if typ.startswith("FixedString("):
        n = int(typ[12:-1])
        return b"".join(v if len(v) == n else bytes(v[:n]).ljust(n, b"\0") for v in values)
    if typ.startswith("Array("):
        inner = typ[6:-1]
        ends, total = [], 0
        for v in values:
            total += len(v)
            ends.append(total)
        flat = [x for v in values for x in v]
        return _fixed("Q", ends) + encode_column(inner, flat)
    if typ.startswith("Nullable("):
        inner = typ[9:-1]
        default: Any = b"" if inner == "String" else 0
        nulls = bytes(1 if v is None else 0 for v in values)
        return nulls + encode_column(inner, [default if v is None else v for v in values])
    raise TypeError(f"no Native encoding for ClickHouse type {typ} (add it to native.encode_column)")


def encode_block(cols: Sequence[tuple[Column, Sequence[Any]]]) -> bytes:
    """One Native block of equally long columns."""
    n = len(cols[0][1]) if cols else 0
    parts = [varuint(len(cols)), varuint(n)]
    for c, values in cols:
        if len(values) != n:
            raise ValueError(f"column {c.name} has {len(values)} values, the block {n}")
        name, typ = c.name.encode(), c.type.encode()
        parts += [varuint(len(name)), name, varuint(len(typ)), typ, encode_column(c.type, values)]
    return b"".join(parts)


def write_blocks(f: IO[bytes], blocks: Iterable[Sequence[tuple[Column, Sequence[Any]]]]) -> int:
    """Blocks appended to ``f``; returns the rows written."""
    rows = 0
    for cols in blocks:
        f.write(encode_block(cols))
        rows += len(cols[0][1]) if cols else 0
    return rows

