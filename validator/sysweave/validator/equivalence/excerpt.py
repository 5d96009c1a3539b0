"""How differing bytes are shown in a verdict: text as text, binary data as bytes, one escaping each.

A difference in a text file shows as ``'total: 4000000000\n'`` (Unicode as itself, controls escaped once);
in binary data as ``b'\x84\xf8&\x12'``: never a mix of the two, as ``'\\x84'`` beside ``'\x12'`` was. A cut at the
excerpt's edges may split a UTF-8 sequence: those partial bytes are left out of the text (the excerpt's
``...`` says it goes on) rather than turning the whole excerpt into bytes.
"""

from __future__ import annotations

import codecs

__all__ = ["excerpt", "line_start", "show_bytes", "where"]


def _as_text(part: bytes) -> str | None:
    """``part`` as text if it is UTF-8 (a sequence cut at either edge allowed), else None."""
    lead = 0
    while lead < min(3, len(part)) and 0x80 <= part[lead] <= 0xBF:  # continuation bytes of a character cut off
        lead += 1
    try:
        return codecs.getincrementaldecoder("utf-8")().decode(part[lead:], final=False)
    except UnicodeDecodeError:
        return None


def show_bytes(data: bytes, limit: int = 24) -> str:
    """The first ``limit`` bytes of ``data`` as a quoted text or bytes literal, ``...`` when there is more."""
    part = bytes(data[:limit])
    text = _as_text(part)
    shown = repr(text) if text is not None else repr(part)
    return shown + ("..." if len(data) > limit else "")


def line_start(data: bytes, i: int, back: int = 16) -> int:
    """Where the excerpt of a difference at byte ``i`` starts: its line's start, at most ``back`` bytes before
    it (the bytes before ``i`` are the same on both sides)."""
    return max(data.rfind(b"\n", 0, i) + 1, i - back)


def where(data: bytes, i: int) -> str:
    """`` (line L, column C)`` for text past its first line (1-based; column in bytes); nothing for binary data
    or the first line, where the byte offset says it."""
    line = data.count(b"\n", 0, i) + 1
    if line == 1 or b"\0" in data[max(0, i - 16):i + 24] or _as_text(data[max(0, i - 16):i + 24]) is None:
        return ""
    start = data.rfind(b"\n", 0, i) + 1
    return f" (line {line}, column {i - start + 1})"


def excerpt(data: bytes, i: int) -> str:
    """The differing bytes with what precedes them on their line: 'ping' vs 'pong', not 'ing' vs 'ong'."""
    start = line_start(data, i)
    shown = show_bytes(data[start:i + 24], limit=24 + i - start)
    return shown if start == data.rfind(b"\n", 0, i) + 1 else "..." + shown
