"""Differential fuzzing speed (issue 17.2's target: the fuzzing loop adds <= 10 % over running the two programs
natively in a loop), and how long shrinking takes.

Pair: examples/pairs/stdin/sum.py (the interpreter itself, not a version-manager shim) against its C
translation. The same N mutants of the small seed are run three ways, interleaved, R rounds, medians:

* ``native``: the two programs one after the other, ``subprocess.run(input=..., capture_output=True)``
  in one directory (what a shell loop does);
* ``native, both at once``: the two started together (Popen, outputs through pipes), then both waited for;
* ``fuzz loop`` (``--fuzz``'s exploring executions): mutate, a fresh directory per side, both sides started at
  once, outputs compared, both trees read and compared, scratch removed;
* ``fuzz loop, private /tmp`` (``--fuzz-private-tmp``; by default only confirming and shrinking runs): the
  same with each side in its own /tmp.

Then ``fuzz()`` from the seed alone with seeds 1..S, as the CLI runs it (confirming and shrinking with each side
in its own /tmp): executions until the divergence, shrink executions and time.

    python -m bench fuzz [N] [R] [S]
"""

from __future__ import annotations

import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sysweave.agents.scratch import PrivateTmp
from sysweave.validator.fuzz.execute import NativeExecutor
from sysweave.validator.fuzz.loop import FuzzConfig, fuzz
from sysweave.validator.fuzz.model import FuzzInput, first_divergence
from sysweave.validator.fuzz.mutate import Targets, mutate

PAIRS = Path(__file__).resolve().parents[1] / "examples" / "pairs" / "stdin"


def _native(argvs: list[list[str]], mutants: list[FuzzInput], cwd: str) -> float:
    t0 = time.perf_counter()
    for m in mutants:
        for argv in argvs:
            subprocess.run(argv, input=m.stdin, capture_output=True, cwd=cwd, check=False)
    return time.perf_counter() - t0


def _native_together(argvs: list[list[str]], mutants: list[FuzzInput], cwd: str) -> float:
    stdin = os.path.join(cwd, "stdin")
    t0 = time.perf_counter()
    for m in mutants:
        with open(stdin, "wb") as f:
            f.write(m.stdin or b"")
        with open(stdin, "rb") as f:
            procs = [subprocess.Popen(argv, stdin=f, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=cwd)
                     for argv in argvs]
        for p in procs:
            p.communicate()
    return time.perf_counter() - t0


def _loop(ex: NativeExecutor, mutants: list[FuzzInput]) -> float:
    rng, targets = random.Random(0), Targets.of(mutants[0])
    t0 = time.perf_counter()
    for m in mutants:
        mutate(m, rng, targets)  # the mutation's cost (the mutant run is the pre-drawn one)
        a, b = ex.run_pair(m)
        first_divergence(a, b)
    return time.perf_counter() - t0


def main(n: int = 200, rounds: int = 3, seeds: int = 3) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        binary = os.path.join(tmp, "sum")
        subprocess.run(["cc", "-O2", "-w", "-o", binary, str(PAIRS / "sum.c")], check=True)
        original = f"{sys.executable} {PAIRS / 'sum.py'}"
        seed = FuzzInput(stdin=(PAIRS / "small.txt").read_bytes())
        rng = random.Random(1)
        mutants = [mutate(seed, rng, Targets.of(seed)) for _ in range(n)]
        argvs = [[sys.executable, str(PAIRS / "sum.py")], [binary]]
        ex = NativeExecutor(original, binary, None, 30.0)
        iso = NativeExecutor(original, binary, None, 30.0, isolate=lambda d: PrivateTmp(shared=[d], cwd=d))
        rows: dict[str, list[float]] = {"native": [], "native, both at once": [], "fuzz loop": [],
                                        "fuzz loop, private /tmp": []}
        for _ in range(rounds):
            rows["native"].append(n / _native(argvs, mutants, tmp))
            rows["native, both at once"].append(n / _native_together(argvs, mutants, tmp))
            rows["fuzz loop"].append(n / _loop(ex, mutants))
            rows["fuzz loop, private /tmp"].append(n / _loop(iso, mutants))
        base, together = statistics.median(rows["native"]), statistics.median(rows["native, both at once"])
        print(f"fuzz speed, {n} mutants of small.txt, sum.py vs sum.c, median of {rounds} (load {os.getloadavg()[0]:.1f}):")
        for name, rates in rows.items():
            med = statistics.median(rates)
            print(f"  {name:24} {med:7.1f} executions/s   {base / med:5.2f}x native's time per execution, "
                  f"{together / med:5.2f}x both-at-once's")
        found, shrink_runs, shrink_s = [], [], []
        for s in range(1, seeds + 1):
            rep = fuzz(NativeExecutor(original, binary, None, 30.0), [seed], FuzzConfig(2000, s),  # as the CLI:
                       NativeExecutor(original, binary, None, 30.0, isolate=lambda d: PrivateTmp(shared=[d], cwd=d)))
            assert rep.finding is not None, f"seed {s}: no divergence in 2000 executions"
            found.append(rep.finding.found_at)
            shrink_runs.append(rep.finding.shrink_executions)
            shrink_s.append(rep.finding.shrink_s)
            print(f"  seed {s}: divergence after {rep.finding.found_at} executions, shrunk "
                  f"{rep.finding.found.size()} -> {rep.finding.shrunk.size()} bytes "
                  f"({rep.finding.shrunk.describe()}) in {rep.finding.shrink_executions} executions, "
                  f"{rep.finding.shrink_s:.2f} s")
        if not found:
            return
        print(f"  median: found after {statistics.median(found):.0f} executions; shrink {statistics.median(shrink_runs):.0f} "
              f"executions, {statistics.median(shrink_s):.2f} s")


if __name__ == "__main__":
    main(*[int(a) for a in sys.argv[1:]])
