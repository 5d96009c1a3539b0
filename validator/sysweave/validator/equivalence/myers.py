"""Myers' O((N+M)·D) difference algorithm (1986), greedy forward search with a trace for the edit script.

>>> [(op, a, b) for op, a, b in diff("abcabba", "cbabac") if op != "equal"][:2]
[('delete', 0, 0), ('delete', 1, 0)]

``diff(a, b)`` returns ("equal"|"delete"|"insert", index_in_a, index_in_b) steps that turn ``a`` into ``b``
with the minimum number of deletions + insertions (D). Items are compared with ``==``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["Step", "diff", "edit_distance", "first_divergence"]

Step = tuple[str, int, int]


def diff(a: Sequence[Any], b: Sequence[Any]) -> list[Step]:
    n, m = len(a), len(b)
    # strip the common prefix and suffix: cheap, and usually most of two similar traces
    pre = 0
    while pre < n and pre < m and a[pre] == b[pre]:
        pre += 1
    suf = 0
    while suf < n - pre and suf < m - pre and a[n - 1 - suf] == b[m - 1 - suf]:
        suf += 1
    core = _myers(a[pre:n - suf], b[pre:m - suf])
    steps: list[Step] = [("equal", i, i) for i in range(pre)]
    steps += [(op, i + pre, j + pre) for op, i, j in core]
    steps += [("equal", n - suf + k, m - suf + k) for k in range(suf)]
    return steps


def _myers(a: Sequence[Any], b: Sequence[Any]) -> list[Step]:
    n, m = len(a), len(b)
    if n == 0:
        return [("insert", 0, j) for j in range(m)]
    if m == 0:
        return [("delete", i, 0) for i in range(n)]
    maxd = n + m
    offset = maxd + 1  # one spare slot each side so every saved slice is in range
    v = [0] * (2 * maxd + 4)
    trace: list[list[int]] = []
    for d in range(maxd + 1):
        # keep only the diagonals step d can read (O(D^2) memory, not O(D*(N+M)))
        trace.append(v[offset - d - 1:offset + d + 2])
        for k in range(-d, d + 1, 2):
            if k == -d or (k != d and v[offset + k - 1] < v[offset + k + 1]):
                x = v[offset + k + 1]  # down: insertion
            else:
                x = v[offset + k - 1] + 1  # right: deletion
            y = x - k
            while x < n and y < m and a[x] == b[y]:
                x += 1
                y += 1
            v[offset + k] = x
            if x >= n and y >= m:
                return _backtrack(trace, a, b, d)
    raise AssertionError("unreachable: D <= N + M")


def _backtrack(trace: list[list[int]], a: Sequence[Any], b: Sequence[Any], d_final: int) -> list[Step]:
    x, y = len(a), len(b)
    steps: list[Step] = []
    for d in range(d_final, -1, -1):
        saved = trace[d]
        k = x - y
        if d == 0:
            while x > 0 and y > 0:
                x, y = x - 1, y - 1
                steps.append(("equal", x, y))
            break
        if k == -d or (k != d and saved[k - 1 + d + 1] < saved[k + 1 + d + 1]):
            prev_k = k + 1
        else:
            prev_k = k - 1
        prev_x = saved[prev_k + d + 1]
        prev_y = prev_x - prev_k
        while x > prev_x and y > prev_y:
            x, y = x - 1, y - 1
            steps.append(("equal", x, y))
        if x == prev_x:
            y -= 1
            steps.append(("insert", x, y))
        else:
            x -= 1
            steps.append(("delete", x, y))
    steps.reverse()
    return steps


def edit_distance(steps: list[Step]) -> int:
    return sum(1 for op, _, _ in steps if op != "equal")


def first_divergence(steps: list[Step]) -> int | None:
    """Position in ``steps`` of the first non-equal step, or None when the sequences are equal."""
    for pos, (op, _, _) in enumerate(steps):
        if op != "equal":
            return pos
    return None
