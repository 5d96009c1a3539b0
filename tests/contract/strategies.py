"""Hypothesis strategies for every wire event type, derived from the dataclasses' type hints."""

from __future__ import annotations

import enum
import types
import typing
from dataclasses import fields
from typing import Any

from hypothesis import strategies as st

from sysweave.schemas import codec
from sysweave.schemas.events import EVENT_TYPES, CausalStamp, EventHeader

u64 = st.integers(0, 2**64 - 1)
i64 = st.integers(-(2**63), 2**63 - 1)
text = st.text(max_size=40)
arg_values = st.one_of(st.none(), st.booleans(), i64, text, st.binary(max_size=40),
                       st.lists(i64, min_size=1, max_size=4).map(tuple), st.lists(text, min_size=1, max_size=4).map(tuple))


def _for_hint(hint: Any, name: str) -> st.SearchStrategy[Any]:
    if name in ("src", "dst"):
        return st.binary(min_size=16, max_size=16)
    if name == "args" or typing.get_origin(hint) is dict:
        return st.dictionaries(st.text(min_size=1, max_size=12), arg_values, max_size=6)
    simple = {int: i64, str: text, bytes: st.binary(max_size=64), bool: st.booleans()}
    if hint in simple:
        return simple[hint]
    if isinstance(hint, type) and issubclass(hint, enum.IntEnum):
        return st.sampled_from(list(hint))
    origin, params = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType) and type(None) in params:
        (inner,) = [p for p in params if p is not type(None)]
        return st.none() | _for_hint(inner, name)
    if origin is tuple:
        return st.lists(_for_hint(params[0], name), max_size=6).map(tuple)
    raise TypeError(hint)


headers = st.builds(
    EventHeader, event_id=st.binary(min_size=16, max_size=16), host_id=text, pid=i64, tid=i64,
    mono_ns=u64, wall_ns=u64, duration_ns=u64, stamp=st.builds(CausalStamp, lamport=u64, hlc=u64),
)


def event_strategy(cls: type) -> st.SearchStrategy[Any]:
    hints = typing.get_type_hints(cls)
    kwargs = {f.name: _for_hint(hints[f.name], f.name) for f in fields(cls) if f.name != "h"}
    return st.builds(cls, h=headers, **kwargs)


any_event = st.one_of([event_strategy(t) for t in EVENT_TYPES.values()])
batches = st.builds(codec.Batch, producer_id=u64, sequence=u64, created_wall_ns=u64,
                    events=st.lists(any_event, max_size=8).map(tuple))
