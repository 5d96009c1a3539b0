"""How a verdict shows differing bytes: text as a text literal, binary data as a bytes literal, never a mix (the
demo's xorfile pair showed ``'\\x84'`` beside ``'\x12'``); the line and column only for text."""

from __future__ import annotations

import ast

from hypothesis import given
from hypothesis import strategies as st

from sysweave.validator.equivalence.compare import compare_bytes
from sysweave.validator.equivalence.excerpt import excerpt, show_bytes, where


def test_text_shows_as_text_and_binary_as_bytes() -> None:
    assert show_bytes("😀 ok\t4\n".encode()) == repr("😀 ok\t4\n")
    assert show_bytes(b"\x84\xf8&\x12\x1e") == repr(b"\x84\xf8&\x12\x1e")
    assert show_bytes(b"x" * 30, limit=24) == repr("x" * 24) + "..."


def test_a_character_cut_at_either_edge_keeps_the_excerpt_text() -> None:
    data = "ééééé".encode()  # 2 bytes each
    assert show_bytes(data[1:], limit=8) == repr("ééé") + "..."  # a leading continuation byte and a cut tail


def test_binary_differences_have_no_line_and_column() -> None:
    a = b"\x84\xf8\n\x12\x1e\x07\xe2\xa0\x96\x1c1W\xe1\xdd\xb4E\x94"
    b = a[:-1] + b"\x00"
    d = compare_bytes("file:./data.xor", a, b)
    assert d is not None
    assert d.explanation == f"byte {len(a) - 1} of ./data.xor differs: {excerpt(a, len(a) - 1)} vs {excerpt(b, len(a) - 1)}"
    assert "b'" in d.explanation and "\\\\x" not in d.explanation and where(a, len(a) - 1) == ""


def test_text_differences_name_line_and_column() -> None:
    a, b = b"ok\ntotal: 4000000000\n", b"ok\ntotal: -294967296\n"
    d = compare_bytes("stdout", a, b)
    assert d is not None
    assert d.explanation == "byte 10 of stdout differs (line 2, column 8): 'total: 4000000000\\n' vs 'total: -294967296\\n'"


@given(st.binary(max_size=64), st.integers(1, 40))
def test_shown_literal_reads_back_as_the_bytes_it_shows(data: bytes, limit: int) -> None:
    shown = show_bytes(data, limit)
    literal = ast.literal_eval(shown.removesuffix("..."))
    part = data[:limit]
    if isinstance(literal, bytes):
        assert literal == part
    else:
        assert literal.encode("utf-8") in part and len(part) - len(literal.encode("utf-8")) <= 6
