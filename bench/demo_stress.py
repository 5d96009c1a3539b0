"""``make demo-stress``: the demo (``make run``'s validations) N times back to back with every core loaded by
a busy loop; no verdict may be wrong (issue 15: a capture race once showed only on a loaded machine).

    python -m bench demo_stress [RUNS] [BURNERS]     # default 5 runs, one busy loop per core

Prints one line per run (verdicts right / wrong / undecided, seconds) and the medians; exits 1 if any
verdict was wrong or a run failed, 2 if none was wrong but some were undecided. Figures: docs/benchmarks.md.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ["main"]

BUSY_LOOP = "while True:\n    pass\n"


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


@dataclass
class Run:
    right: int
    total: int
    wrong: list[str]
    undecided: list[str]
    exit: int
    wall_s: float
    load: str


def _one(k: int, tmp: Path) -> Run:
    summary = tmp / f"run{k}.json"
    # the default store unless $SYSWEAVE_STORE names one: a store of the runs' own, which grows over the runs
    env = {**os.environ, "SYSWEAVE_STORE": os.environ.get("SYSWEAVE_STORE") or str(tmp / "store")}
    t0 = time.monotonic()
    res = subprocess.run([sys.executable, "-m", "sysweave.cli.main", "demo", "--summary", str(summary)],
                         capture_output=True, text=True, env=env)
    wall = time.monotonic() - t0
    try:
        s = json.loads(summary.read_text())
        return Run(s["right"], s["total"], s["wrong"], s["undecided"], res.returncode, round(wall, 1), _load())
    except (OSError, ValueError, KeyError):
        tail = (res.stderr.strip().splitlines() or ["(no output)"])[-1]
        return Run(0, 0, [f"the demo failed (exit {res.returncode}): {tail}"], [], res.returncode, round(wall, 1), _load())


def main(runs: int = 5, burners: int = 0) -> None:
    burners = burners or os.cpu_count() or 2
    print(f"demo-stress: {runs} demo runs back to back, {burners} busy loop(s) on {os.cpu_count()} cores; "
          f"load before: {_load()}", flush=True)
    loops = [subprocess.Popen([sys.executable, "-c", BUSY_LOOP]) for _ in range(burners)]
    results: list[Run] = []
    try:
        with tempfile.TemporaryDirectory(prefix="sysweave-demo-stress-") as tmp:
            for k in range(1, runs + 1):
                r = _one(k, Path(tmp))
                results.append(r)
                print(f"  run {k}/{runs}: {r.right}/{r.total} right, {len(r.wrong)} wrong, {len(r.undecided)} "
                      f"undecided, {r.wall_s} s (exit {r.exit}; load {r.load})", flush=True)
                for line in r.wrong + r.undecided:
                    print(f"      {line}", flush=True)
    finally:
        for p in loops:
            p.kill()
            p.wait()
    wrong = sum(len(r.wrong) for r in results)
    undecided = sum(len(r.undecided) for r in results)
    walls = [r.wall_s for r in results]
    print(f"demo-stress: {sum(r.total for r in results)} verdicts in {runs} runs: {wrong} wrong, {undecided} "
          f"undecided; median {statistics.median(walls):.0f} s per run (max {max(walls):.0f} s)")
    if wrong or any(r.exit not in (0, 2) for r in results):
        sys.exit(1)
    if undecided:
        sys.exit(2)
