"""The column-wise write path (``columns.trace_columns``, numpy or not) gives exactly the row path's insert columns
(``columns.columnar`` over ``rows.trace_rows``), and syscall_spans' stored columns invert its DDL's ALIAS columns."""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sysweave.schemas import columns, rows
from sysweave.schemas.clocks import hlc_pack, ns_to_hlc_ticks
from sysweave.schemas.syscall_table_x86_64 import SYSCALL_NAMES_X86_64

from .traces import big_trace, every_event_trace, traces


def _without_versions(cols: dict[str, list[tuple[Any, list[Any]]]]) -> dict[str, dict[str, list[Any]]]:
    return {t: {c.name: v for c, v in cs if c.name != "version"} for t, cs in cols.items() if cs and cs[0][1]}


def _row_path(tr: Any) -> dict[str, list[tuple[Any, list[Any]]]]:
    return {t: columns.columnar(t, r) for t, r in rows.trace_rows(tr, "l", "b", 3).items()}


@settings(max_examples=60, deadline=None)
@given(tr=traces())
def test_column_wise_equals_row_path(tr: Any) -> None:
    old = columns.COLUMNWISE_MIN
    columns.COLUMNWISE_MIN = 1
    try:
        fast = columns.trace_columns(tr, "l", "b", 3)
    finally:
        columns.COLUMNWISE_MIN = old
    assert _without_versions(fast) == _without_versions(_row_path(tr))


def test_column_wise_equals_row_path_on_big_and_every_event_traces() -> None:
    for tr in (big_trace(5_000), every_event_trace()):
        assert _without_versions(columns.trace_columns(tr, "l", "b", 3)) == _without_versions(_row_path(tr))


U64 = st.integers(0, 2**64 - 1)
NAMES = st.sampled_from([b"read", b"write", b"openat", b"syscall_999", b"", "caf\u00e9".encode()])


@settings(max_examples=200, deadline=None)
@given(values=st.lists(st.tuples(st.binary(min_size=0, max_size=16), U64, U64, U64, NAMES, st.integers(0, 2**16 - 1),
                                 st.integers(-(2**63), 2**63 - 1), st.binary(max_size=3), U64), min_size=1, max_size=20))
def test_storage_columns_with_and_without_numpy(values: list[tuple[Any, ...]]) -> None:
    keys = ("event_id", "mono_ns", "wall_ns", "hlc", "name", "nr", "ret", "payload", "payload_len")
    cols: dict[str, list[Any]] = {k: [v[i] for v in values] for i, k in enumerate(keys)}
    with pytest.MonkeyPatch.context() as m:
        m.setattr(columns, "NUMPY_MIN_ROWS", 0)  # numpy whatever the size (small columns skip it to save its import)
        with_np = columns._storage_columns("syscall_spans", cols)
    with pytest.MonkeyPatch.context() as m:
        m.setattr(columns, "_np", lambda _rows: None)
        without = columns._storage_columns("syscall_spans", cols)
    assert with_np == without
    table = {n.encode(): nr for nr, n in SYSCALL_NAMES_X86_64.items()}
    for i, (eid, mono, wall, hlc, name, nr, ret, payload, plen) in enumerate(values):  # the DDL's ALIAS expressions
        assert (with_np["event_hi"][i].to_bytes(8, "big") + with_np["event_lo"][i].to_bytes(8, "big")) == eid.ljust(16, b"\0")
        assert (wall - with_np["clock_offset_ns"][i]) % 2**64 == mono
        assert ((ns_to_hlc_ticks(wall) << 16) + with_np["hlc_skew"][i]) % 2**64 == hlc
        assert (table.get(name, 0) + with_np["nr_fix"][i]) % 2**16 == nr
        assert ((max(ret, 0) if payload else 0) + with_np["payload_len_fix"][i]) % 2**64 == plen


def test_fixes_are_zero_for_ordinary_spans() -> None:
    wall = 1_795_000_000_123_456_789
    cols: dict[str, list[Any]] = {
        "event_id": [bytes(16)] * 3, "mono_ns": [0] * 3, "wall_ns": [wall] * 3,
        "hlc": [hlc_pack(ns_to_hlc_ticks(wall), 0), hlc_pack(ns_to_hlc_ticks(wall), 3), hlc_pack(ns_to_hlc_ticks(wall), 0)],
        "name": [b"read", b"openat", b"write"], "nr": [0, 257, 1], "ret": [5, 3, -11], "payload": [b"hello", b"", b""],
        "payload_len": [5, 0, 0]}
    out = columns._storage_columns("syscall_spans", cols)
    assert out["hlc_skew"] == [0, 3, 0] and out["nr_fix"] == [0, 0, 0] and out["payload_len_fix"] == [0, 0, 0]


def test_nr_table_is_the_same_in_both_variants() -> None:
    from importlib import resources

    sql = resources.files("sysweave.schemas").joinpath("sql")
    plain = sql.joinpath("0040_syscall_spans_v2.sql").read_text("utf-8")
    codecs = sql.joinpath("0040_syscall_spans_v2.codecs.sql").read_text("utf-8")
    copy = sql.joinpath("0041_syscall_spans_v2.sql").read_text("utf-8")
    tables = {re.search(r"transform\(name, \[[^\]]*\], \[[^\]]*\]", t).group(0) for t in (plain, codecs, copy)}  # type: ignore[union-attr]
    assert len(tables) == 1
    assert columns._nr_base()[b"openat"] == 257 and columns._nr_base()[b"no-such"] == 0


def _listed(cols: dict[str, list[tuple[Any, Any]]]) -> dict[str, dict[str, list[Any]]]:
    return {t: {c: (v.tolist() if hasattr(v, "tolist") else list(v)) for c, v in cs.items()}
            for t, cs in _without_versions(cols).items()}


@settings(max_examples=60, deadline=None)
@given(tr=traces())
def test_array_path_equals_row_path(tr: Any) -> None:
    """trace_columns(arrays=True) (numpy syscall_spans columns; the list path where a value does not fit)."""
    old = columns.COLUMNWISE_MIN, columns.NUMPY_MIN_ROWS
    columns.COLUMNWISE_MIN, columns.NUMPY_MIN_ROWS = 1, 0
    try:
        fast = columns.trace_columns(tr, "l", "b", 3, arrays=True)
    finally:
        columns.COLUMNWISE_MIN, columns.NUMPY_MIN_ROWS = old
    assert _listed(fast) == _listed(_row_path(tr))


def test_array_path_is_taken_for_ordinary_spans() -> None:
    tr = big_trace(5_000)
    fast = columns.trace_columns(tr, "l", "b", 3, arrays=True)
    assert any(hasattr(v, "dtype") for _c, v in fast["syscall_spans"])
    assert _listed(fast) == _listed(_row_path(tr))
