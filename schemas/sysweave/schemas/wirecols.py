"""Columnar decoding of a batch's positional events (``codec``'s fast path, no format of its own).

A batch's events arrive as one msgpack array of positional arrays (``codec``'s module docstring). Row by row,
decoding costs one Python function call, ~20 type checks and ~14 slot stores per event; here the events of one
kind are transposed into columns (``zip(*rows)``, one tuple per position) and each column is checked and stored
at once — ``set(map(type, column))`` is the whole check of a plain column, and every object's slot is set by
``map(slot.__set__, objects, column)`` — so the per-event work runs in C, not in bytecode.

Column checks accept exactly what ``codec``'s row decoder accepts without a named path (exact types; msgpack
itself already bounds ints to 64 bits and string / bin / map sizes); anything else returns ``None`` and the
caller decodes row by row, which either accepts the batch through the full checks or raises the
``DecodeError`` naming the position. The objects built are the same objects: equal, field for field
(``tests/contract/test_codec_columns.py`` checks it with hypothesis against the row decoder).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from itertools import chain, groupby, repeat
from operator import itemgetter
from typing import Any, Final

__all__ = ["ColumnKind", "FieldSpec", "decode_columns"]

_NEW: Final = object.__new__
_FIRST: Final = itemgetter(0)
_SCALARS: Final = frozenset({int, str, bytes, bool, type(None)})


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """How one positional field's column is checked and converted.

    ``plain``: the exact type every value must have (the whole check), or None; ``optional``: or None;
    ``intern``: share equal strings
    (``sys.intern``); ``args``: a map of scalar arguments kept as decoded when every value is a scalar, else
    ``check``-ed per value; ``enum``: value -> member; ``check``: the per-value checker (raises on bad input)."""

    plain: type | None = None
    optional: bool = False
    intern: Callable[[str], str] | None = None
    args: bool = False
    enum: Mapping[int, Any] | None = None
    check: Callable[[Any, str], Any] | None = None


def _setters(cls: type) -> tuple[Callable[[Any, Any], None], ...]:
    """Each slot's setter of a slotted dataclass, in field order (frozen dataclasses forbid ``setattr``; their
    slot descriptors do not)."""
    return tuple(cls.__dict__[f.name].__set__ for f in fields(cls))


def _only(column: Sequence[Any], t: type) -> bool:
    return set(map(type, column)) == {t}


def _plain_args(column: Sequence[Any], max_map: int) -> bool:
    """Every value a dict of at most ``max_map`` string keys and scalar values (then kept as decoded)."""
    if not _only(column, dict) or max(map(len, column)) > max_map:
        return False
    keys = set(map(type, chain.from_iterable(column)))
    return keys <= {str} and set(map(type, chain.from_iterable(map(dict.values, column)))) <= _SCALARS


class ColumnKind:
    """The column decoder and encoder of one event type (built once per kind by ``codec``).

    ``stamp_cls``/``header_cls``/``cls``: the causal stamp, header and event classes; ``specs``: one
    :class:`FieldSpec` per field after the header; ``max_map``: the argument map limit."""

    def __init__(self, kind: int, cls: type, header_cls: type, stamp_cls: type, specs: Sequence[FieldSpec],
                 host_intern: Callable[[str], str], max_map: int) -> None:
        self.kind, self.cls, self.header_cls, self.stamp_cls = kind, cls, header_cls, stamp_cls
        self.specs, self.host_intern, self.max_map = tuple(specs), host_intern, max_map
        self.width = 10 + len(self.specs)  # kind, 7 header fields, lamport, hlc, fields
        self.set_stamp, self.set_header, self.set_event = _setters(stamp_cls), _setters(header_cls), _setters(cls)

    def column(self, col: tuple[Any, ...], spec: FieldSpec) -> Sequence[Any] | None:
        """One field's column checked and converted, or None when a value needs the row decoder's checks."""
        if spec.plain is not None:
            types = set(map(type, col))
            if types != {spec.plain} and not (spec.optional and types <= {spec.plain, type(None)}):
                return None
            return tuple(map(spec.intern, col)) if spec.intern is not None else col
        if spec.args and _plain_args(col, self.max_map):
            return col
        if spec.enum is not None:
            return tuple(map(spec.enum.__getitem__, col)) if _only(col, int) else None  # KeyError: caller
        assert spec.check is not None
        return tuple(map(spec.check, col, repeat("")))  # raises (caught by decode_columns) on a bad value

    def decode(self, rows: list[list[Any]]) -> list[Any] | None:
        """Every row (all of this kind and width) as an event, in order; None when a column fails its check."""
        n = len(rows)
        cols = list(zip(*rows))
        if not (_only(cols[1], bytes) and set(map(len, cols[1])) == {16} and _only(cols[2], str)
                and set(map(type, chain.from_iterable(cols[3:10]))) == {int}):
            return None
        values = []
        for col, spec in zip(cols[10:], self.specs):
            v = self.column(col, spec)
            if v is None:
                return None
            values.append(v)
        stamps: list[Any] = list(map(_NEW, repeat(self.stamp_cls, n)))
        _store(self.set_stamp, stamps, (cols[8], cols[9]))
        heads: list[Any] = list(map(_NEW, repeat(self.header_cls, n)))
        _store(self.set_header, heads, (cols[1], tuple(map(self.host_intern, cols[2])), *cols[3:8], stamps))
        out: list[Any] = list(map(_NEW, repeat(self.cls, n)))
        _store(self.set_event, out, (heads, *values))
        return out


def _store(setters: Sequence[Callable[[Any, Any], None]], objs: list[Any], columns: Sequence[Sequence[Any]]) -> None:
    for set_slot, col in zip(setters, columns):
        deque(map(set_slot, objs, col), 0)


def decode_columns(raws: list[Any], kinds: Mapping[int, ColumnKind]) -> list[Any] | None:
    """A batch's event arrays decoded column by column, in order; None when anything needs the row decoder
    (a row that is not a list, an unknown kind, a wrong width, a value not of its exact type)."""
    if not raws:
        return []
    try:
        if not _only(raws, list) or 0 in map(len, raws):
            return None
        tags = list(map(_FIRST, raws))
        if not _only(tags, int):
            return None
        if len(set(tags)) == 1:
            return _decode_kind(raws, kinds.get(tags[0]))
        order = sorted(range(len(raws)), key=tags.__getitem__)  # stable: each kind's rows in batch order
        built: list[Any] = []
        for tag, idx in groupby(order, key=tags.__getitem__):
            part = _decode_kind(list(map(raws.__getitem__, idx)), kinds.get(tag))
            if part is None:
                return None
            built += part
    except (KeyError, ValueError, TypeError):  # a DecodeError is a ValueError
        return None
    out: list[Any] = [None] * len(raws)
    for i, e in zip(order, built):
        out[i] = e
    return out


def _decode_kind(rows: list[list[Any]], kind: ColumnKind | None) -> list[Any] | None:
    if kind is None or set(map(len, rows)) != {kind.width}:
        return None
    return kind.decode(rows)
