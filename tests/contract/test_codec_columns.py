"""The columnar decode (``codec.decode_batch`` through ``wirecols``) against the row decode it replaced
(``codec.decode_batch_rows``): the same events, field for field and type for type, or the same DecodeError —
on valid batches of every event type, on long single-kind runs (the columns' common case) and on batches with
one value mutated (which the columns must hand back to the row decoder)."""

from __future__ import annotations

from typing import Any

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sysweave.schemas import codec, wirecols
from sysweave.schemas.events import EVENT_TYPES, EventHeader, SyscallSpan

from .strategies import any_event, batches, event_strategy


def _same(data: bytes) -> codec.Batch | None:
    """Both decoders on ``data``: equal batches with events of the same types, or the same error message."""
    try:
        rows = codec.decode_batch_rows(data)
    except codec.DecodeError as exc:
        with pytest.raises(codec.DecodeError) as got:
            codec.decode_batch(data)
        assert str(got.value) == str(exc)
        return None
    cols = codec.decode_batch(data)
    assert cols == rows
    assert [type(e) for e in cols.events] == [type(e) for e in rows.events]
    assert [type(e.h.stamp) for e in cols.events] == [type(e.h.stamp) for e in rows.events]
    for a, b in zip(cols.events, rows.events, strict=True):
        assert [type(getattr(a, n)) for n in a.__slots__] == [type(getattr(b, n)) for n in b.__slots__]
    return cols


@given(batches)
@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
def test_mixed_batches_decode_as_rows_do(batch: codec.Batch) -> None:
    data = codec.encode_batch(batch)
    assert _same(data) == batch
    # and through the columns themselves, not through the row decoder they fall back to
    assert wirecols.decode_columns(msgpack.unpackb(data, raw=False)[4], codec.COLUMN_KINDS) == list(batch.events)


@pytest.mark.parametrize("cls", list(EVENT_TYPES.values()), ids=lambda c: c.__name__)
@given(data=st.data())
@settings(max_examples=40, suppress_health_check=[HealthCheck.too_slow])
def test_runs_of_one_kind_decode_as_rows_do(cls: type, data: st.DataObject) -> None:
    events = data.draw(st.lists(event_strategy(cls), min_size=1, max_size=30))
    tail = data.draw(st.lists(any_event, max_size=3))
    batch = codec.Batch(1, 2, 3, tuple(events + tail))
    assert _same(codec.encode_batch(batch)) == batch


_ODD = st.one_of(st.none(), st.booleans(), st.integers(-(2**63), 2**64 - 1), st.text(max_size=5),
                 st.binary(max_size=20), st.binary(min_size=16, max_size=16), st.lists(st.integers(0, 3), max_size=3),
                 st.dictionaries(st.text(max_size=3), st.one_of(st.integers(-5, 5), st.lists(st.text(max_size=2))),
                                 max_size=2))


@given(batches.filter(lambda b: len(b.events) > 0), st.data())
@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
def test_a_mutated_value_gives_the_same_events_or_the_same_error(batch: codec.Batch, data: st.DataObject) -> None:
    raw: list[Any] = msgpack.unpackb(codec.encode_batch(batch), raw=False)
    events = raw[4]
    i = data.draw(st.integers(0, len(events) - 1))
    how = data.draw(st.sampled_from(["value", "drop", "extra", "row"]))
    if how == "value":
        j = data.draw(st.integers(0, len(events[i]) - 1))
        events[i][j] = data.draw(_ODD)
    elif how == "drop":
        events[i].pop()
    elif how == "extra":
        events[i].append(0)
    else:
        events[i] = data.draw(_ODD)
    _same(msgpack.packb(raw, use_bin_type=True))


def test_a_long_run_with_one_bad_value_names_its_position() -> None:
    """A 2,000-span batch (the agents' size): the columns fail as a whole, the row decoder names the event."""
    one = SyscallSpan(EventHeader(b"\x01" * 16, "h", 1, 1, 0, 0), 0, "read", 8, {"fd": 3})
    raw: list[Any] = msgpack.unpackb(codec.encode_batch(codec.Batch(0, 0, 0, (one,) * 2000)), raw=False)
    raw[4][1234][3] = True  # a pid that is a boolean
    with pytest.raises(codec.DecodeError, match=r"batch\.events\[1234\]\.pid: expected an integer, got bool"):
        codec.decode_batch(msgpack.packb(raw, use_bin_type=True))
