"""Mutators (pure, seeded): a new input from an old one, every random choice drawn from the ``random.Random``
passed in, so a run is reproducible from its seed.

A mutation picks one target (stdin, one argument, one workdir file) and applies 1-4 stacked byte operators
(AFL's "havoc"): bit flips, random bytes, insertions, deletions, duplications, a splice with another input,
a numeric token replaced by a boundary integer (2^31-1, 2^31, 2^63-1, 2^63, -1, 0, ...) or nudged, a token
of the programs' own string constants (the dictionary), an emptied target, a long line, a non-ASCII or
invalid UTF-8 sequence, line deletion/duplication/swap.

    >>> import random
    >>> seed = FuzzInput(stdin=b"3\\n1 2 3\\n")
    >>> a = mutate(seed, random.Random(7), Targets.of(seed), (b"quit",))
    >>> a == mutate(seed, random.Random(7), Targets.of(seed), (b"quit",))  # same seed, same mutation
    True
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from sysweave.validator.fuzz.model import FuzzInput

__all__ = ["BOUNDARY_INTEGERS", "MAX_LEN", "Targets", "mutate", "mutate_bytes"]

BOUNDARY_INTEGERS = (0, -1, 1, 2, 7, 8, 10, 16, 100, 127, 128, 255, 256, 1000, 32767, 32768, 65535, 65536,
                     2**31 - 1, 2**31, -2**31, -2**31 - 1, 2**32 - 1, 2**32, 2**53 + 1, 2**63 - 1, 2**63,
                     -2**63, -2**63 - 1, 2**64 - 1, 2**64, 10**30)
UNICODE_SAMPLES = ("é".encode(), "ß".encode(), "İ".encode(), "ﬀ".encode(), "😀".encode(), "\u0301".encode(),
                   "日本".encode(), b"\xff", b"\xc3", b"\xed\xa0\x80", b"\x00", b"\r\n", b"\t")
MAX_LEN = 1 << 20  # bytes: a target is never grown past this
_NUMBER = re.compile(rb"-?\d+")


@dataclass(frozen=True)
class Targets:
    """What a mutation may change: stdin (when the case gives it), argument indices, workdir file paths."""

    stdin: bool
    args: int
    files: tuple[str, ...]

    @staticmethod
    def of(seed: FuzzInput) -> Targets:
        return Targets(seed.stdin is not None, len(seed.args), tuple(p for p, _ in seed.files))

    def choices(self) -> tuple[list[tuple[str, object]], list[float]]:
        """(kind, key) pairs and their weights: stdin, arguments and workdir files share the mutations
        0.5/0.3/0.2 among those present (files get all of them when the case has no stdin or arguments)."""
        groups: list[tuple[list[tuple[str, object]], float]] = [
            ([("stdin", None)] if self.stdin else [], 0.5),
            ([("arg", i) for i in range(self.args)], 0.3),
            ([("file", p) for p in self.files], 0.2)]
        present = [(g, w) for g, w in groups if g]
        total = sum(w for _, w in present)
        out, weights = [], []
        for group, w in present:
            out += group
            weights += [w / total / len(group)] * len(group)
        return out, weights


def _span(rng: random.Random, n: int) -> tuple[int, int]:
    """A random [start, end) inside n bytes, short spans more likely."""
    start = rng.randrange(n)
    length = min(n - start, 1 + int(rng.expovariate(1 / 8)))
    return start, start + length


def _flip(d: bytes, rng: random.Random, _: Sequence[bytes], __: Sequence[bytes]) -> bytes:
    if not d:
        return bytes([rng.randrange(256)])
    i = rng.randrange(len(d))
    return d[:i] + bytes([d[i] ^ (1 << rng.randrange(8))]) + d[i + 1:]


def _random_byte(d: bytes, rng: random.Random, _: Sequence[bytes], __: Sequence[bytes]) -> bytes:
    i = rng.randrange(len(d) + 1)
    return d[:i] + bytes([rng.choice(b"0123456789-+ \n.,:;abz~\x7f\x80")]) + d[i + 1:]


def _insert(d: bytes, rng: random.Random, _: Sequence[bytes], __: Sequence[bytes]) -> bytes:
    i = rng.randrange(len(d) + 1)
    return d[:i] + bytes(rng.randrange(256) for _ in range(rng.randint(1, 8))) + d[i:]


def _delete(d: bytes, rng: random.Random, _: Sequence[bytes], __: Sequence[bytes]) -> bytes:
    if not d:
        return d
    a, b = _span(rng, len(d))
    return d[:a] + d[b:]


def _duplicate(d: bytes, rng: random.Random, _: Sequence[bytes], __: Sequence[bytes]) -> bytes:
    if not d:
        return d
    a, b = _span(rng, len(d))
    return d[:b] + d[a:b] * rng.randint(1, 16) + d[b:]


def _splice(d: bytes, rng: random.Random, others: Sequence[bytes], _: Sequence[bytes]) -> bytes:
    if not others:
        return d
    o = rng.choice(others)
    return d[:rng.randrange(len(d) + 1)] + o[rng.randrange(len(o) + 1):]


def _number(d: bytes, rng: random.Random, _: Sequence[bytes], __: Sequence[bytes]) -> bytes:
    """Replace a numeric token (or insert one) with a boundary integer or a nudged value."""
    tokens = [m for m in _NUMBER.finditer(d) if len(m.group()) <= 40]  # int() of 4,300+ digits is refused
    if rng.random() < 0.7 or not tokens:
        value = rng.choice(BOUNDARY_INTEGERS)
    else:
        value = int(rng.choice(tokens).group()) + rng.choice((-1, 1, -2, 2, 10, -10))
        value = value * rng.choice((1, 1, 2, 10, 1000, -1)) if rng.random() < 0.3 else value
    new = str(value).encode()
    if not tokens:
        i = rng.randrange(len(d) + 1)
        return d[:i] + new + d[i:]
    m = rng.choice(tokens)
    return d[:m.start()] + new + d[m.end():]


def _dictionary(d: bytes, rng: random.Random, _: Sequence[bytes], words: Sequence[bytes]) -> bytes:
    word = rng.choice(words) if words else rng.choice(UNICODE_SAMPLES)
    i = rng.randrange(len(d) + 1)
    if rng.random() < 0.5:  # overwrite rather than insert
        return d[:i] + word + d[i + len(word):]
    return d[:i] + word + d[i:]


def _unicode(d: bytes, rng: random.Random, _: Sequence[bytes], __: Sequence[bytes]) -> bytes:
    i = rng.randrange(len(d) + 1)
    return d[:i] + rng.choice(UNICODE_SAMPLES) + d[i:]


def _empty(d: bytes, rng: random.Random, _: Sequence[bytes], __: Sequence[bytes]) -> bytes:
    return b"" if rng.random() < 0.7 else b"\n"


def _long_line(d: bytes, rng: random.Random, _: Sequence[bytes], __: Sequence[bytes]) -> bytes:
    unit = rng.choice((b"A", b"9", b" ", b"\xc3\xa9", d[:8] or b"x"))
    line = unit * rng.choice((255, 256, 1024, 4095, 4096, 4097, 65536))
    i = rng.randrange(len(d) + 1)
    return d[:i] + line + d[i:]


def _lines(d: bytes, rng: random.Random, _: Sequence[bytes], __: Sequence[bytes]) -> bytes:
    lines = d.splitlines(keepends=True)
    if not lines:
        return d
    i, j = rng.randrange(len(lines)), rng.randrange(len(lines))
    op = rng.randrange(3)
    if op == 0:
        del lines[i]
    elif op == 1:
        lines.insert(i, lines[j])
    else:
        lines[i], lines[j] = lines[j], lines[i]
    return b"".join(lines)


Operator = Callable[[bytes, random.Random, Sequence[bytes], Sequence[bytes]], bytes]
# weights: the structured operators (numbers, dictionary, lines) find translation bugs more often than bit flips
OPERATORS: tuple[tuple[Operator, int], ...] = (
    (_flip, 3), (_random_byte, 2), (_insert, 2), (_delete, 3), (_duplicate, 2), (_splice, 2), (_number, 6),
    (_dictionary, 3), (_unicode, 2), (_empty, 1), (_long_line, 1), (_lines, 3))
_OPS = [op for op, w in OPERATORS for _ in range(w)]


def mutate_bytes(data: bytes, rng: random.Random, others: Sequence[bytes] = (), words: Sequence[bytes] = ()) -> bytes:
    """1-4 stacked operators on ``data``; never longer than MAX_LEN."""
    for _ in range(rng.choice((1, 1, 1, 2, 2, 3, 4))):
        data = rng.choice(_OPS)(data, rng, others, words)[:MAX_LEN]
    return data


def _target_bytes(inp: FuzzInput, kind: str, key: object) -> bytes:
    if kind == "stdin":
        return inp.stdin or b""
    if kind == "arg":
        assert isinstance(key, int)
        return inp.args[key].encode("utf-8", "surrogateescape")
    return dict(inp.files).get(str(key), b"")


def mutate(inp: FuzzInput, rng: random.Random, targets: Targets, words: Sequence[bytes] = (),
           pool: Sequence[FuzzInput] = ()) -> FuzzInput:
    """A mutant of ``inp``: one target changed (``pool``: other inputs to splice from). Arguments never get a
    NUL byte (execve cannot pass one); an input with no target is returned unchanged."""
    choices, weights = targets.choices()
    if not choices:
        return inp
    kind, key = rng.choices(choices, weights)[0]
    others = [x for x in (_target_bytes(p, kind, key) for p in pool) if x]
    data = mutate_bytes(_target_bytes(inp, kind, key), rng, others, words)
    if kind == "stdin":
        return replace(inp, stdin=data)
    if kind == "arg":
        assert isinstance(key, int)
        args = list(inp.args)
        args[key] = data.replace(b"\x00", b"").decode("utf-8", "surrogateescape")
        return replace(inp, args=tuple(args))
    return inp.with_file(str(key), data)
