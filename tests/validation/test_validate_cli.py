"""sysweave validate end to end with real eBPF: every bundled pair (faithful: equivalent; broken: divergent), the
same verdicts through launchers, --runs masking, undecidable runs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from sysweave.cli.demo import LAUNCHER_PAIRS, build, discover_pairs, launchers

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
SYSWEAVE = [sys.executable, "-m", "sysweave.cli.main"]
PAIRS = discover_pairs(EXAMPLES)

pytestmark = [pytest.mark.bpf, pytest.mark.usefixtures("bpf_ready")]


@pytest.fixture(scope="module")
def bins(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("examples")
    build(EXAMPLES, out)
    return out


def validate(*args: str, store: Path | None = None) -> subprocess.CompletedProcess[str]:
    extra = ["--store", str(store)] if store else ["--no-store"]
    return subprocess.run([*SYSWEAVE, "validate", *args, *extra], capture_output=True, text=True, timeout=300)


def test_corpus_is_complete() -> None:
    """At least 20 pairs, each with its C translation, and each listed in examples/pairs/README.md."""
    assert len(PAIRS) >= 20
    assert sorted(p.stem for p in (EXAMPLES / "pairs").glob("*.py")) == list(PAIRS)  # no .py without its .c
    readme = (EXAMPLES / "pairs" / "README.md").read_text()
    assert [name for name in PAIRS if f"`{name}`" not in readme] == []


def check(original: str, transpiled: Path, expected: str) -> dict[str, Any]:
    r = validate("--original", original, "--transpiled", str(transpiled), "--workdir", str(EXAMPLES / "data"), "--json")
    assert r.returncode in (0, 1), r.stdout + r.stderr
    report = json.loads(r.stdout)
    assert report["verdict"] == expected, f"{transpiled.name}: {report['verdict']}: {report['explanation']}"
    assert r.returncode == (0 if expected == "equivalent" else 1)
    return report


@pytest.mark.parametrize("name", PAIRS)
def test_pair_faithful_equivalent(name: str, bins: Path) -> None:
    report = check(f"{sys.executable} {EXAMPLES / 'pairs' / f'{name}.py'}", bins / name, "equivalent")
    assert report["performance"]["speedup"] > 0


@pytest.mark.parametrize("name", PAIRS)
def test_pair_broken_divergent(name: str, bins: Path) -> None:
    report = check(f"{sys.executable} {EXAMPLES / 'pairs' / f'{name}.py'}", bins / f"{name}-broken", "divergent")
    assert report["divergence"]["resource"]


LAUNCHED = [(name, label) for name in LAUNCHER_PAIRS for label, _ in launchers(EXAMPLES / "pairs" / f"{name}.py")]


@pytest.mark.parametrize(("name", "launcher"), LAUNCHED)
def test_launchers_transparent(name: str, launcher: str, bins: Path) -> None:
    """python3 from PATH (a pyenv shim on these machines), env and sh -c give the verdicts of the interpreter."""
    original = dict(launchers(EXAMPLES / "pairs" / f"{name}.py"))[launcher]
    check(original, bins / name, "equivalent")
    check(original, bins / f"{name}-broken", "divergent")


def test_runs_mask_nondeterminism(tmp_path) -> None:
    prog = "python3 -c 'import os, time; print(os.getpid(), time.time_ns()); print(\"done\")'"
    r = validate("--original", prog, "--transpiled", prog, "--runs", "2", "--json")
    report = json.loads(r.stdout)
    assert r.returncode == 0 and report["masked"]["original"] and report["confidence"] < 1
    single = validate("--original", prog, "--transpiled", prog)
    assert single.returncode == 1  # without --runs the pid differs


def test_report_is_stored(tmp_path, bins: Path) -> None:
    store = tmp_path / "store"
    r = validate("--original", str(bins / "greet"), "--transpiled", str(bins / "greet-broken"),
                 "--workdir", str(EXAMPLES / "data"), store=store)
    assert r.returncode == 1
    q = subprocess.run([*SYSWEAVE, "query", "--store", str(store), "--format", "json",
                        "SELECT verdict, explanation FROM validation_results"], capture_output=True, text=True)
    row = json.loads(q.stdout)["data"][0]
    assert row["verdict"] == "divergent" and row["explanation"] == "exit code 3 vs 0"


def test_undecidable_runs_exit_2() -> None:
    r = validate("--original", "sleep 5", "--transpiled", "sleep 6", "--timeout", "1")
    assert r.returncode == 2 and "neither side finished" in r.stdout
    r = validate("--original", "no-such-program-sysweave", "--transpiled", "true")
    assert r.returncode == 2 and "command not found" in r.stdout
    r = validate("--original", "true", "--transpiled", "true", "--runs", "0")
    assert r.returncode == 2
