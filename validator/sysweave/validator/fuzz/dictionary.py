"""The programs' own string constants, as mutation tokens (pure on text; :func:`program_words` reads files).

Comparisons a program makes against literals ("quit", "--verbose", "%d", "\\t") are what random bytes rarely
hit; a dictionary of them (AFL's -x, libFuzzer's -dict) makes those branches reachable.

    >>> words_from_source('if cmd == "quit": print(f"bye {n}")\\nx = \\'\\\\t\\'')
    [b'quit', b'bye ', b'\\t']
    >>> words_from_source('printf("%ld\\\\n", total); if (strcmp(s, "stop") == 0)')
    [b'%ld\\n', b'stop']
"""

from __future__ import annotations

import ast
import os
import re
import warnings
from collections.abc import Iterable

__all__ = ["MAX_WORDS", "program_words", "words_from_source"]

MAX_WORDS = 256
_C_STRING = re.compile(r'"((?:[^"\\\n]|\\.)*)"')
_C_CHAR = re.compile(r"'((?:[^'\\\n]|\\.){1,4})'")
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "0": "\0", "\\": "\\", '"': '"', "'": "'"}


def _unescape(s: str) -> str:
    return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), m.group(0)), s)


def _python_words(text: str) -> list[str] | None:
    try:
        with warnings.catch_warnings():  # the user's invalid escapes are theirs to hear about, not in our output
            warnings.simplefilter("ignore")
            tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return None
    consts = [n for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, (str, bytes))]
    consts.sort(key=lambda n: (n.lineno, n.col_offset))  # in source order
    return [n.value.decode("latin-1") if isinstance(n.value, bytes) else str(n.value) for n in consts]


def words_from_source(text: str) -> list[bytes]:
    """String (and char) literals of a Python or C-like source, de-duplicated in order, 1-64 bytes each;
    docstring-sized literals are left out."""
    found = _python_words(text)
    if found is None:
        found = [_unescape(m.group(1)) for m in _C_STRING.finditer(text)]
        found += [_unescape(m.group(1)) for m in _C_CHAR.finditer(text)]
    out: list[bytes] = []
    for word in found:
        data = word.encode("utf-8", "surrogateescape")
        if 0 < len(data) <= 64 and data not in out:
            out.append(data)
    return out[:MAX_WORDS]


def program_words(paths: Iterable[str]) -> list[bytes]:
    """The dictionary of the readable text files among ``paths`` (binaries and unreadable files skipped)."""
    out: list[bytes] = []
    for path in paths:
        try:
            if os.path.getsize(path) > 4 << 20:
                continue
            with open(path, "rb") as f:
                raw = f.read()
        except OSError:
            continue
        if b"\0" in raw:
            continue
        for w in words_from_source(raw.decode("utf-8", "replace")):
            if w not in out:
                out.append(w)
    return out[:MAX_WORDS]
