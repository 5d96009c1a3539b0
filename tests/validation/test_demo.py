"""`sysweave demo` (make run): the plan of validations, one progress line per stage and per validation, and
a summary that counts right, wrong and undecided verdicts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sysweave.cli.demo import LAUNCHER_PAIRS, PAIRS, build_cases, case_plan, plan

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"


def test_plan_has_both_variants_of_every_pair_then_the_launchers_once_each() -> None:
    todo = plan(EXAMPLES, Path("/bins"), PAIRS, True)
    assert len(todo) == 2 * len(PAIRS) + 2 * 3 * len(LAUNCHER_PAIRS)  # launchers: all but the plain interpreter
    assert todo[0] == (PAIRS[0], f"{sys.executable} {EXAMPLES / 'pairs' / f'{PAIRS[0]}.py'}",
                       f"/bins/{PAIRS[0]}", "equivalent")
    assert todo[1][0] == f"{PAIRS[0]}-broken" and todo[1][3] == "divergent"
    assert [t[0] for t in todo[2 * len(PAIRS):][:2]] == ["greet via python3 on PATH", "greet-broken via python3 on PATH"]
    assert len({t[0] for t in todo}) == len(todo)
    assert len(plan(EXAMPLES, Path("/bins"), ("greet",), False)) == 2


@pytest.mark.bpf
@pytest.mark.usefixtures("bpf_ready")
def test_demo_reports_each_stage_and_counts_verdicts(tmp_path: Path) -> None:
    summary = tmp_path / "summary.json"
    r = subprocess.run([sys.executable, "-m", "sysweave.cli.main", "demo", "--pair", "greet", "--pair", "childsignal",
                        "--no-launchers", "--summary", str(summary)], capture_output=True, text=True, timeout=600,
                       env={**os.environ, "SYSWEAVE_STORE": str(tmp_path / "store")})
    assert r.returncode == 0, r.stdout + r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].startswith("[setup]  2 pairs, 4 validations") and lines[1].startswith("[trace]  ")
    assert [ln.split("]")[0] for ln in lines[2:6]] == ["[validate 1/4", "[validate 2/4", "[validate 3/4", "[validate 4/4"]
    assert all(" ok  " in ln for ln in lines[2:6])
    s = json.loads(summary.read_text())
    assert (s["right"], s["wrong"], s["undecided"], s["total"], s["not_stored"]) == (4, [], [], 4, 0)
    assert s["total_s"] >= s["validation_s"] > 0


def test_case_plan_is_the_case_file_with_each_cases_expected_verdict() -> None:
    todo = case_plan(EXAMPLES, Path("/bins"))
    assert [(t[0], t[3]) for t in todo] == [("sum case small", "equivalent"), ("sum case negative", "equivalent"),
                                            ("sum case many", "equivalent"), ("sum case large", "divergent")]
    assert todo[0][1].endswith("examples/pairs/stdin/sum.py") and todo[0][2] == "/bins/stdin-sum"
    large = todo[3][4]
    assert large.name == "large" and large.stdin == b"2000000000 2000000000\n"
    assert todo[0][4].stdin_file is not None and todo[0][4].stdin_file.endswith("stdin/small.txt")


@pytest.mark.bpf
@pytest.mark.usefixtures("bpf_ready")
def test_demo_case_step_counts_each_case(tmp_path: Path) -> None:
    """The case step through the demo's checker (validate's case code): every case's verdict as expected."""
    from sysweave.cli.demo_check import Checker

    build_cases(EXAMPLES, tmp_path / "bin")
    checker = Checker(EXAMPLES / "data", str(tmp_path / "store"))
    try:
        results = [checker.check(label, original, transpiled, expected, case)
                   for label, original, transpiled, expected, case in case_plan(EXAMPLES, tmp_path / "bin")]
    finally:
        checker.close()
    assert all(ok for ok, _ in results), results
    assert results[3][1].startswith("DIVERGENT"), results[3][1]
    assert (checker.tally.right, checker.tally.wrong, checker.tally.undecided) == (4, [], [])
