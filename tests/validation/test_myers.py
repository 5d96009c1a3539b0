"""Myers diff: a minimal edit script that really turns a into b."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from sysweave.validator.equivalence.myers import diff, edit_distance, first_divergence


def lcs(a: list[int], b: list[int]) -> int:
    dp = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i, x in enumerate(a):
        for j, y in enumerate(b):
            dp[i + 1][j + 1] = dp[i][j] + 1 if x == y else max(dp[i][j + 1], dp[i + 1][j])
    return dp[-1][-1]


seqs = st.lists(st.integers(0, 3), max_size=14)


@given(seqs, seqs)
def test_script_is_valid_and_minimal(a: list[int], b: list[int]) -> None:
    steps = diff(a, b)
    out = []
    for op, i, j in steps:
        if op == "equal":
            assert a[i] == b[j]
            out.append(a[i])
        elif op == "insert":
            out.append(b[j])
    assert out == b
    assert [a[i] for op, i, _ in steps if op != "insert"] == a
    assert edit_distance(steps) == len(a) + len(b) - 2 * lcs(a, b)


def test_first_divergence() -> None:
    assert first_divergence(diff("abc", "abc")) is None
    steps = diff("abcd", "abxd")
    assert steps[first_divergence(steps)][0] in ("delete", "insert")  # type: ignore[index]


def test_large_similar_sequences_are_fast() -> None:
    a = list(range(200_000))
    b = a[:]
    b[100_000] = -1
    assert edit_distance(diff(a, b)) == 2
