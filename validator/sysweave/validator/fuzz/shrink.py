"""Shrinking (pure): the smallest input that still fails, by delta debugging and integer shrinking.

``still_fails`` is the only contact with the world (the shell passes a function that runs both programs);
every call counts against ``budget``. Passes, repeated until none makes progress:

* ddmin (Zeller and Hildebrandt's delta debugging) over the lines of stdin and of each file, then over
  their bytes; over the characters of each argument;
* integer shrinking: each numeric token in stdin, files and arguments moved toward zero by bisection
  (assuming a monotone threshold: the result is the boundary, e.g. 2147483648 for a 32-bit overflow).

    >>> fails = lambda inp: b"7" in (inp.stdin or b"") and b"x" in (inp.stdin or b"")
    >>> small, used = shrink(FuzzInput(stdin=b"abc\\n7 x\\nzzz\\n"), fails)
    >>> small.stdin
    b'7x'
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import TypeVar

from sysweave.validator.fuzz.model import FuzzInput

__all__ = ["Budget", "ddmin", "shrink", "shrink_integer"]

T = TypeVar("T")
_NUMBER = re.compile(rb"-?\d+")


class Budget:
    """Counts predicate calls; ``exhausted`` once ``limit`` is reached."""

    def __init__(self, limit: int) -> None:
        self.limit, self.used = limit, 0

    @property
    def exhausted(self) -> bool:
        return self.used >= self.limit

    def call(self, fails: Callable[[T], bool], x: T) -> bool:
        self.used += 1
        return fails(x)


def ddmin(items: Sequence[T], fails: Callable[[Sequence[T]], bool], budget: Budget) -> list[T]:
    """A 1-minimal sub-sequence of ``items`` for which ``fails`` holds (``fails(items)`` is assumed).
    With budget left at the end, removing any single element makes ``fails`` false."""
    current, n = list(items), 2
    while len(current) >= 2 and not budget.exhausted:
        chunk = max(1, len(current) // n)
        parts = [current[i:i + chunk] for i in range(0, len(current), chunk)]
        reduced = False
        for i in range(len(parts)):
            if budget.exhausted:
                break
            complement = [x for j, p in enumerate(parts) if j != i for x in p]
            if budget.call(fails, complement):
                current, n, reduced = complement, max(n - 1, 2), True
                break
        if not reduced:
            if n >= len(current):
                break
            n = min(len(current), n * 2)
    if len(current) == 1 and not budget.exhausted and budget.call(fails, []):
        return []
    return current


def shrink_integer(value: int, fails: Callable[[int], bool], budget: Budget) -> int:
    """The integer of smallest magnitude, same sign, between 0 and ``value`` for which ``fails`` holds,
    found by bisection (``fails(value)`` is assumed; exact when the predicate has one threshold)."""
    if value == 0 or budget.exhausted:
        return value
    if budget.call(fails, 0):
        return 0
    sign = 1 if value > 0 else -1
    if abs(value) == 1 or not budget.call(fails, value - sign):  # already the boundary: one call, not ~log2
        return value
    sign, lo, hi = (1 if value > 0 else -1), 0, abs(value)  # fails(sign*hi), not fails(sign*lo)
    while hi - lo > 1 and not budget.exhausted:
        mid = (lo + hi) // 2
        if budget.call(fails, sign * mid):
            hi = mid
        else:
            lo = mid
    return sign * hi


def _shrink_numbers(data: bytes, fails: Callable[[bytes], bool], budget: Budget) -> bytes:
    for _ in range(64):  # each pass shrinks one token; later tokens shift, so search again
        changed = False
        for m in _NUMBER.finditer(data):
            if len(m.group()) > 4000:  # past int()'s digit limit; ddmin shortens it instead
                continue
            head, tail = data[:m.start()], data[m.end():]
            value = int(m.group())

            def with_value(v: int, h: bytes = head, t: bytes = tail) -> bool:
                return fails(h + str(v).encode() + t)
            best = shrink_integer(value, with_value, budget)
            if best != value:
                data, changed = head + str(best).encode() + tail, True
                break
        if not changed or budget.exhausted:
            break
    return data


def _shrink_bytes(data: bytes, fails: Callable[[bytes], bool], budget: Budget) -> bytes:
    """Lines (ddmin), then numbers (bisection: cheap, and it names the boundary), then bytes (ddmin)."""
    data = b"".join(ddmin(data.splitlines(keepends=True), lambda ls: fails(b"".join(ls)), budget))
    data = _shrink_numbers(data, fails, budget)
    if len(data) <= 1 << 16:
        data = bytes(ddmin(list(data), lambda bs: fails(bytes(bs)), budget))
    return _shrink_numbers(data, fails, budget)


def _shrink_once(inp: FuzzInput, fails: Callable[[FuzzInput], bool], budget: Budget) -> FuzzInput:
    if inp.stdin:
        inp = replace(inp, stdin=_shrink_bytes(inp.stdin, lambda d: fails(replace(inp, stdin=d)), budget))
    for i in range(len(inp.args)):
        def with_arg(d: bytes, i: int = i, base: FuzzInput = inp) -> FuzzInput:
            args = list(base.args)
            args[i] = d.decode("utf-8", "surrogateescape")
            return replace(base, args=tuple(args))
        new = _shrink_bytes(inp.args[i].encode("utf-8", "surrogateescape"), lambda d: fails(with_arg(d)), budget)
        inp = with_arg(new)
    for path, content in inp.files:
        def with_content(d: bytes, b: FuzzInput = inp, p: str = path) -> bool:
            return fails(b.with_file(p, d))
        inp = inp.with_file(path, _shrink_bytes(content, with_content, budget))
    return inp


def shrink(inp: FuzzInput, still_fails: Callable[[FuzzInput], bool], limit: int = 2000) -> tuple[FuzzInput, int]:
    """The smallest failing input found within ``limit`` predicate calls, and the calls used."""
    budget = Budget(limit)
    while not budget.exhausted:
        smaller = _shrink_once(inp, still_fails, budget)
        if smaller == inp:
            break
        inp = smaller
    return inp, budget.used
