"""The column-wise write path (``rows.trace_columns``, numpy or not) gives exactly the row path's insert columns
(``rows.columnar`` over ``rows.trace_rows``), and syscall_spans' stored columns invert its DDL's ALIAS columns."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sysweave.schemas import rows
from sysweave.schemas.clocks import hlc_pack, ns_to_hlc_ticks

from .traces import big_trace, every_event_trace, traces


def _without_versions(cols: dict[str, list[tuple[Any, list[Any]]]]) -> dict[str, dict[str, list[Any]]]:
    return {t: {c.name: v for c, v in cs if c.name != "version"} for t, cs in cols.items() if cs and cs[0][1]}


def _row_path(tr: Any) -> dict[str, list[tuple[Any, list[Any]]]]:
    return {t: rows.columnar(t, r) for t, r in rows.trace_rows(tr, "l", "b", 3).items()}


@settings(max_examples=60, deadline=None)
@given(tr=traces())
def test_column_wise_equals_row_path(tr: Any) -> None:
    old = rows.COLUMNWISE_MIN
    rows.COLUMNWISE_MIN = 1
    try:
        fast = rows.trace_columns(tr, "l", "b", 3)
    finally:
        rows.COLUMNWISE_MIN = old
    assert _without_versions(fast) == _without_versions(_row_path(tr))


def test_column_wise_equals_row_path_on_big_and_every_event_traces() -> None:
    for tr in (big_trace(5_000), every_event_trace()):
        assert _without_versions(rows.trace_columns(tr, "l", "b", 3)) == _without_versions(_row_path(tr))


U64 = st.integers(0, 2**64 - 1)


@settings(max_examples=200, deadline=None)
@given(values=st.lists(st.tuples(st.binary(min_size=0, max_size=16), U64, U64, U64), min_size=1, max_size=20))
def test_storage_columns_with_and_without_numpy(values: list[tuple[bytes, int, int, int]]) -> None:
    cols: dict[str, list[Any]] = {"event_id": [v[0] for v in values], "mono_ns": [v[1] for v in values],
                                  "wall_ns": [v[2] for v in values], "hlc": [v[3] for v in values]}
    with_np = rows._storage_columns("syscall_spans", cols)
    with pytest.MonkeyPatch.context() as m:
        m.setattr(rows, "_np", lambda: None)
        without = rows._storage_columns("syscall_spans", cols)
    assert with_np == without
    for i, (eid, mono, wall, hlc) in enumerate(values):  # what the DDL's ALIAS expressions compute back
        assert (with_np["event_hi"][i].to_bytes(8, "big") + with_np["event_lo"][i].to_bytes(8, "big")) == eid.ljust(16, b"\0")
        assert (wall - with_np["clock_offset_ns"][i]) % 2**64 == mono
        assert ((ns_to_hlc_ticks(wall) << 16) + with_np["hlc_skew"][i]) % 2**64 == hlc


def test_hlc_skew_is_small_for_stamped_spans() -> None:
    wall = 1_795_000_000_123_456_789
    cols: dict[str, list[Any]] = {"event_id": [bytes(16)] * 2, "mono_ns": [0, 0], "wall_ns": [wall, wall],
            "hlc": [hlc_pack(ns_to_hlc_ticks(wall), 0), hlc_pack(ns_to_hlc_ticks(wall), 3)]}
    assert rows._storage_columns("syscall_spans", cols)["hlc_skew"] == [0, 3]
