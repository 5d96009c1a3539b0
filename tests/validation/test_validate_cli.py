"""sysweave validate end to end with real eBPF: the bundled pairs, --runs masking, undecidable runs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from sysweave.cli.demo import PAIRS, build

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
SYSWEAVE = [sys.executable, "-m", "sysweave.cli.main"]

pytestmark = [pytest.mark.bpf, pytest.mark.usefixtures("bpf_ready")]


@pytest.fixture(scope="module")
def bins(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("examples")
    build(EXAMPLES, out)
    return out


def validate(*args: str, store: Path | None = None) -> subprocess.CompletedProcess[str]:
    extra = ["--store", str(store)] if store else ["--no-store"]
    return subprocess.run([*SYSWEAVE, "validate", *args, *extra], capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("name", PAIRS)
def test_pairs_equivalent_and_broken_divergent(name: str, bins: Path) -> None:
    original = f"{sys.executable} {EXAMPLES / 'pairs' / f'{name}.py'}"
    ok = validate("--original", original, "--transpiled", str(bins / name), "--workdir", str(EXAMPLES / "data"), "--json")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    report = json.loads(ok.stdout)
    assert report["verdict"] == "equivalent" and report["performance"]["speedup"] > 0
    bad = validate("--original", original, "--transpiled", str(bins / f"{name}-broken"), "--workdir", str(EXAMPLES / "data"),
                   "--json")
    assert bad.returncode == 1
    assert json.loads(bad.stdout)["divergence"]["resource"]


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
    r = validate("--original", "sleep 5", "--transpiled", "true", "--timeout", "1")
    assert r.returncode == 2 and "timeout" in r.stderr
    r = validate("--original", "no-such-program-sysweave", "--transpiled", "true")
    assert r.returncode == 2 and "command not found" in r.stderr
    r = validate("--original", "true", "--transpiled", "true", "--runs", "0")
    assert r.returncode == 2
