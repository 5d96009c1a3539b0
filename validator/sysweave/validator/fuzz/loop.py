"""The fuzzing loop: seeds, calibration, mutate-run-compare, confirmation, shrinking, the corpus directory.

Deterministic given the seed and the programs: every random choice comes from one ``random.Random(seed)``;
the only contact with the world is the :class:`PairRunner` passed in (the native executor, or a test's
stand-in) and the corpus directory.

Steps:
 1. the seeds (and inputs kept in ``corpus_dir`` by earlier runs) run once each; the first seed runs twice,
    and what differs between two runs of the same side (a channel, or a file) is left out of the comparison
    (reported), so nondeterminism is not reported as a divergence;
 2. each execution mutates a kept input (:mod:`.mutate`, :mod:`.schedule`) and compares both sides
    (:func:`.model.first_divergence`); a new pair of behaviour signatures is kept (and saved to the corpus);
 3. a divergence is confirmed by running the input again (a divergence that does not repeat is counted as
    flaky and fuzzing goes on), then shrunk (:mod:`.shrink`) keeping the same first diverging channel.
    Calibration, seeds, confirmation and shrinking use ``checker`` when one is given (stricter, slower: the
    CLI's runs each side in its own /tmp), the exploring executions ``runner``.
"""

from __future__ import annotations

import hashlib
import os
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from sysweave.validator.fuzz.model import Divergence, FuzzInput, Outcome, first_divergence
from sysweave.validator.fuzz.mutate import Targets, mutate
from sysweave.validator.fuzz.schedule import Scheduler
from sysweave.validator.fuzz.shrink import shrink

__all__ = ["Finding", "FuzzConfig", "FuzzReport", "PairRunner", "fuzz", "load_corpus", "unstable_channels"]

class PairRunner(Protocol):
    timeout_s: float

    def run_pair(self, inp: FuzzInput) -> tuple[Outcome, Outcome]: ...

@dataclass(frozen=True)
class FuzzConfig:
    executions: int  # mutated executions (seeds, calibration, confirmation and shrinking are counted apart)
    seed: int
    shrink_limit: int = 2000  # predicate calls (each one execution of both sides)
    corpus_dir: str | None = None
    words: tuple[bytes, ...] = ()

@dataclass
class Finding:
    found: FuzzInput
    shrunk: FuzzInput
    divergence: Divergence  # on the shrunk input
    found_at: int  # the mutated execution that found it (0: a seed diverges)
    shrink_executions: int
    shrink_s: float

@dataclass
class FuzzReport:
    seed: int
    executions: int = 0  # mutated executions run
    total_runs: int = 0  # every run of both sides (seeds, calibration, confirmation, shrinking)
    fuzz_s: float = 0.0  # time in the mutate-run-compare loop
    finding: Finding | None = None
    kept: int = 0
    flaky: int = 0
    ignored: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def execs_per_s(self) -> float:
        return self.executions / self.fuzz_s if self.fuzz_s else 0.0

def unstable_channels(first: Outcome, again: Outcome) -> set[str]:
    """What differs between two runs of one side on the same input: channels, and files as ``file:./path``."""
    out = {c for c, x, y in (("exit", first.exit, again.exit), ("stdout", first.stdout, again.stdout),
                             ("stderr", first.stderr, again.stderr)) if x != y}
    out |= {f"file:{p}" for p in set(first.tree) | set(again.tree) if first.tree.get(p) != again.tree.get(p)}
    return out

def load_corpus(corpus_dir: str, notes: list[str]) -> list[FuzzInput]:
    """Inputs kept by earlier runs (``*.json``); a file that is not one is skipped with a note."""
    out = []
    for name in sorted(os.listdir(corpus_dir)):
        if not name.endswith(".json"):
            continue
        try:
            with open(os.path.join(corpus_dir, name), encoding="utf-8") as f:
                out.append(FuzzInput.from_json(f.read()))
        except (OSError, ValueError, UnicodeDecodeError) as exc:
            notes.append(f"corpus file {name} skipped: {exc}")
    return out

def _save(corpus_dir: str | None, inp: FuzzInput, prefix: str = "") -> None:
    if corpus_dir is None:
        return
    text = inp.to_json()
    name = prefix + hashlib.blake2b(text.encode(), digest_size=8).hexdigest() + ".json"
    with open(os.path.join(corpus_dir, name), "w", encoding="utf-8") as f:
        f.write(text)

class _Run:
    """Runs pairs, counting them and comparing with the calibrated ignore set. ``checker`` runs what decides
    (calibration, seeds, confirmation, shrinking); ``runner`` the exploring executions."""

    def __init__(self, runner: PairRunner, report: FuzzReport, checker: PairRunner | None = None) -> None:
        self.runner, self.report, self.checker = runner, report, checker or runner
        self.ignore: frozenset[str] = frozenset()

    def pair(self, inp: FuzzInput, exploring: bool = False) -> tuple[Outcome, Outcome, Divergence | None]:
        self.report.total_runs += 1
        a, b = (self.runner if exploring else self.checker).run_pair(inp)
        return a, b, first_divergence(a, b, self.ignore)

    def confirmed(self, inp: FuzzInput, d: Divergence) -> bool:
        again = self.pair(inp)[2]
        return again is not None and again.channel == d.channel

def _calibrate(run: _Run, seeds: Sequence[FuzzInput], sched: Scheduler) -> tuple[FuzzInput, Divergence] | None:
    a1, b1 = run.checker.run_pair(seeds[0])
    a2, b2 = run.checker.run_pair(seeds[0])
    run.report.total_runs += 2
    unstable = unstable_channels(a1, a2) | unstable_channels(b1, b2)
    if any(u.startswith("file:") for u in unstable) and len(unstable) > 8:
        unstable.add("files")
    run.ignore = frozenset(unstable)
    run.report.ignored = sorted(unstable)
    slowest = max(a1.wall_s, a2.wall_s, b1.wall_s, b2.wall_s)
    for r in {id(run.runner): run.runner, id(run.checker): run.checker}.values():
        r.timeout_s = min(r.timeout_s, max(2.0, 20 * slowest))  # a hang shows fast
    for inp in seeds:
        a, b, d = run.pair(inp) if inp is not seeds[0] else (a1, b1, first_divergence(a1, b1, run.ignore))
        if d is not None and run.confirmed(inp, d):
            return inp, d
        sched.note((a.signature(), b.signature()))
    return None

def _shrink(run: _Run, inp: FuzzInput, d: Divergence, found_at: int, limit: int) -> Finding:
    def still_fails(x: FuzzInput) -> bool:
        got = run.pair(x)[2]
        return got is not None and got.channel == d.channel

    t0 = time.monotonic()
    small, used = shrink(inp, still_fails, limit)
    final = run.pair(small)[2] or d
    return Finding(inp, small, final, found_at, used, time.monotonic() - t0)

def fuzz(runner: PairRunner, seeds: Sequence[FuzzInput], config: FuzzConfig,
         checker: PairRunner | None = None) -> FuzzReport:
    """Fuzz until ``config.executions`` mutated executions ran or a confirmed divergence was shrunk.
    ``checker`` (default ``runner``): the stricter runner for calibration, seeds, confirmation and shrinking
    (the CLI's gives each side its own /tmp; exploring runs share it, which is faster)."""
    if not seeds:
        raise ValueError("fuzzing needs at least one seed input")
    report = FuzzReport(config.seed)
    rng = random.Random(config.seed)
    kept = load_corpus(config.corpus_dir, report.notes) if config.corpus_dir else []
    sched = Scheduler(list(seeds) + kept, rng)
    run = _Run(runner, report, checker)
    start = _calibrate(run, list(seeds) + kept, sched)
    if start is not None:
        report.finding = _shrink(run, *start, 0, config.shrink_limit)
        return report
    targets = Targets.of(seeds[0])
    t0 = time.monotonic()
    for i in range(1, config.executions + 1):
        child = mutate(sched.next(), rng, targets, config.words, sched.splice_pool())
        a, b, d = run.pair(child, exploring=True)
        report.executions = i
        if d is not None:
            if run.confirmed(child, d):
                report.fuzz_s = time.monotonic() - t0
                _save(config.corpus_dir, child, "diverging-")
                report.finding = _shrink(run, child, d, i, config.shrink_limit)
                _save(config.corpus_dir, report.finding.shrunk, "diverging-")
                return report
            report.flaky += 1
        elif sched.observe(child, (a.signature(), b.signature())):
            report.kept += 1
            _save(config.corpus_dir, child)
    report.fuzz_s = time.monotonic() - t0
    return report
