"""The fuzzer's pure core: mutators, shrinker, scheduler, outcome comparison (properties with hypothesis), and
the loop against a stand-in pair runner (no processes)."""

from __future__ import annotations

import random
import re

from hypothesis import given, settings
from hypothesis import strategies as st

from sysweave.validator.fuzz.loop import FuzzConfig, fuzz, unstable_channels
from sysweave.validator.fuzz.model import FuzzInput, Outcome, first_divergence
from sysweave.validator.fuzz.mutate import BOUNDARY_INTEGERS, MAX_LEN, Targets, mutate, mutate_bytes
from sysweave.validator.fuzz.shrink import Budget, ddmin, shrink, shrink_integer

_arg = st.text(st.characters(blacklist_characters="\0", blacklist_categories=("Cs",)), max_size=20)
inputs = st.builds(FuzzInput, st.one_of(st.none(), st.binary(max_size=200)), st.lists(_arg, max_size=3).map(tuple),
                   st.dictionaries(st.sampled_from(["a.txt", "d/b.bin"]), st.binary(max_size=100)).map(
                       lambda d: tuple(sorted(d.items()))))


@given(inputs, st.integers(0, 2**32))
def test_mutation_is_a_function_of_the_seed(inp: FuzzInput, seed: int) -> None:
    words = (b"quit", b"%d")
    a = mutate(inp, random.Random(seed), Targets.of(inp), words, [inp])
    b = mutate(inp, random.Random(seed), Targets.of(inp), words, [inp])
    assert a == b


@given(inputs, st.integers(0, 2**32))
def test_mutation_keeps_the_input_shape(inp: FuzzInput, seed: int) -> None:
    """Same targets (stdin present or not, argument count, file paths); arguments never hold NUL."""
    out = mutate(inp, random.Random(seed), Targets.of(inp))
    assert (out.stdin is None) == (inp.stdin is None)
    assert len(out.args) == len(inp.args) and all("\0" not in a for a in out.args)
    assert [p for p, _ in out.files] == [p for p, _ in inp.files]
    changed = [out.stdin != inp.stdin] + [x != y for x, y in zip(out.args, inp.args)] + \
        [x != y for x, y in zip(out.files, inp.files)]
    assert sum(changed) <= 1  # one target per mutation


@given(st.binary(max_size=300), st.integers(0, 2**32))
def test_mutate_bytes_bounded(data: bytes, seed: int) -> None:
    assert len(mutate_bytes(data, random.Random(seed), [b"xyz"], [b"w"])) <= MAX_LEN


def test_mutators_reach_boundaries_empty_and_long_lines() -> None:
    """Over a few thousand mutations of a small numeric seed, each kind of input the issue names appears."""
    rng, seed = random.Random(0), b"3 4 5\n"
    seen = [mutate_bytes(seed, rng, [], [b"quit"]) for _ in range(5000)]
    numbers = {int(t) for s in seen for t in re.findall(rb"-?\d+", s) if len(t) < 40}
    for value in (2**31 - 1, 2**31, 2**63 - 1, 2**63, -1, 0):
        assert value in numbers and value in BOUNDARY_INTEGERS
    assert b"" in seen
    assert any(len(max(s.split(b"\n"), key=len)) >= 4096 for s in seen)
    assert any(b"quit" in s for s in seen)
    assert any(any(b >= 0x80 for b in s) for s in seen)


@settings(max_examples=60)
@given(st.lists(st.integers(0, 9), max_size=40), st.sets(st.integers(0, 9), min_size=1, max_size=3))
def test_ddmin_result_fails_and_is_one_minimal(items: list[int], needed: set[int]) -> None:
    def fails(xs: object) -> bool:
        return needed <= set(xs)  # type: ignore[arg-type]
    if not fails(items):
        return
    out = ddmin(items, fails, Budget(10_000))
    assert fails(out) and len(out) <= len(items)
    assert all(not fails(out[:i] + out[i + 1:]) for i in range(len(out)))  # 1-minimal
    assert len(out) == len(needed)


@given(st.integers(-2**70, 2**70), st.integers(0, 2**70))
def test_integer_shrinking_finds_the_threshold(value: int, threshold: int) -> None:
    def fails(v: int) -> bool:
        return abs(v) >= threshold
    if not fails(value):
        return
    out = shrink_integer(value, fails, Budget(1000))
    assert fails(out) and abs(out) == threshold and (out == 0 or (out > 0) == (value > 0))


@settings(max_examples=50)
@given(inputs)
def test_shrink_never_grows_and_still_fails(inp: FuzzInput) -> None:
    def fails(x: FuzzInput) -> bool:
        return x.size() >= 1
    if not fails(inp):
        return
    out, used = shrink(inp, fails, 500)
    assert fails(out) and out.size() <= inp.size() and used <= 500


def test_shrink_reports_the_overflow_boundary() -> None:
    def overflows(x: FuzzInput) -> bool:
        return any(abs(int(t)) >= 2**31 for t in re.findall(rb"-?\d+", x.stdin or b""))
    out, _ = shrink(FuzzInput(stdin=b"3 4 5\n12 99999999999 -2\n"), overflows)
    assert out.stdin == b"2147483648"


def _outcome(out: bytes, code: int | None = 0) -> Outcome:
    return Outcome(code, out, b"", {})


def test_first_divergence_order_and_ignore() -> None:
    a = Outcome(0, b"x", b"e", {"./f": ("file", 0o644, 1, "d", "")})
    b = Outcome(1, b"y", b"e", {"./f": None})
    assert first_divergence(a, b) is not None and first_divergence(a, b).channel == "exit"  # type: ignore[union-attr]
    d = first_divergence(a, b, frozenset({"exit", "stdout"}))
    assert d is not None and d.channel == "files" and "absent" in d.explanation
    assert first_divergence(a, b, frozenset({"exit", "stdout", "file:./f"})) is None
    assert unstable_channels(a, b) == {"exit", "stdout", "file:./f"}


def test_saved_input_round_trip() -> None:
    inp = FuzzInput(b"\xff\x00", ("-n", "3"), (("a.txt", b"x"),), "found")
    assert FuzzInput.from_json(inp.to_json()) == inp
    try:
        FuzzInput.from_json('{"stdin_b64": 5}')
    except ValueError as exc:
        assert "not a saved fuzz input" in str(exc)
    else:
        raise AssertionError("a bad saved input was accepted")


class Overflow:
    """A stand-in pair: the 'original' sums exactly, the 'translation' in 32 bits; ``noisy`` stderr differs per run."""

    def __init__(self, noisy: bool = False) -> None:
        self.timeout_s, self.noisy, self.calls = 10.0, noisy, 0

    def run_pair(self, inp: FuzzInput) -> tuple[Outcome, Outcome]:
        self.calls += 1
        total = sum(int(t) for t in re.findall(rb"-?\d+", inp.stdin or b""))
        wrapped = (total + 2**31) % 2**32 - 2**31
        err = str(self.calls).encode() if self.noisy else b""
        return Outcome(0, b"%d\n" % total, err, {}), Outcome(0, b"%d\n" % wrapped, err, {})


def test_loop_finds_shrinks_and_repeats_from_the_seed(tmp_path) -> None:
    seeds = [FuzzInput(stdin=b"3 4 5\n12 -2\n")]
    one = fuzz(Overflow(), seeds, FuzzConfig(2000, 42, corpus_dir=str(tmp_path)))
    two = fuzz(Overflow(), seeds, FuzzConfig(2000, 42))
    assert one.finding is not None and two.finding is not None
    assert one.finding.found_at == two.finding.found_at <= 2000 and one.finding.shrunk == two.finding.shrunk
    assert one.finding.divergence.channel == "stdout"
    assert one.finding.shrunk.size() <= 11  # e.g. b'2147483648' or b'-2147483649'
    assert any(p.name.startswith("diverging-") for p in tmp_path.iterdir())
    again = fuzz(Overflow(), seeds, FuzzConfig(10, 1, corpus_dir=str(tmp_path)))  # kept: found before mutating
    assert again.finding is not None and again.finding.found_at == 0


def test_loop_ignores_what_differs_between_runs_of_one_side() -> None:
    rep = fuzz(Overflow(noisy=True), [FuzzInput(stdin=b"1 2\n")], FuzzConfig(200, 3))
    assert "stderr" in rep.ignored
    assert rep.finding is None or rep.finding.divergence.channel == "stdout"


def test_dictionary_reads_a_program_with_invalid_escapes_silently() -> None:
    """The user's program is parsed for its string constants; Python's warnings about its invalid escapes (which
    printed '<unknown>:749: DeprecationWarning' into our output) are not ours to print."""
    import warnings

    from sysweave.validator.fuzz.dictionary import words_from_source

    with warnings.catch_warnings(record=True) as heard:
        warnings.simplefilter("always")
        words = words_from_source('import re\nPAT = re.compile("a\\.b")\nprint("quit")\n')
    assert words == [b"a\\.b", b"quit"] and heard == []
