"""``sysweave validate --fuzz``/``--stdin`` end to end on the stdin-driven pairs (examples/pairs/stdin): programs
whose C translation agrees with the Python original on the small seed and diverges on inputs it lacks."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAIRS = ROOT / "examples" / "pairs" / "stdin"
SYSWEAVE = [sys.executable, "-m", "sysweave.cli.main"]


@pytest.fixture(scope="module")
def bins(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("stdin-pairs")
    for src in PAIRS.glob("*.c"):
        subprocess.run(["cc", "-O2", "-w", "-o", str(out / src.stem), str(src)], check=True)
    return out


def validate(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*SYSWEAVE, "validate", *args, "--no-store"], capture_output=True, text=True, timeout=600)


def original(name: str) -> str:
    return f"{sys.executable} {PAIRS / f'{name}.py'}"


def fuzz_report(name: str, bins: Path, seed_file: str, n: int, *extra: str) -> tuple[int, dict]:
    r = validate("--original", original(name), "--transpiled", str(bins / name), "--stdin", str(PAIRS / seed_file),
                 "--fuzz", str(n), "--json", *extra)
    assert r.returncode in (0, 1), r.stderr
    return r.returncode, json.loads(r.stdout)


def test_identical_programs_no_divergence(bins: Path, tmp_path: Path) -> None:
    """Untraced only: the same program on both sides gives no divergence; the corpus keeps what was new."""
    r = validate("--original", original("sum"), "--transpiled", original("sum"), "--stdin", str(PAIRS / "small.txt"),
                 "--fuzz", "60", "--seed", "5", "--corpus", str(tmp_path / "corpus"))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "NO DIVERGENCE FOUND in 60 executions" in r.stdout and "--seed 5" in r.stdout
    assert list((tmp_path / "corpus").glob("*.json"))


@pytest.mark.bpf
@pytest.mark.usefixtures("bpf_ready")
def test_overflow_pair_equivalent_on_the_seed_divergent_under_fuzzing(bins: Path) -> None:
    r = validate("--original", original("sum"), "--transpiled", str(bins / "sum"), "--stdin",
                 str(PAIRS / "small.txt"), "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    assert json.loads(r.stdout)["verdict"] == "equivalent"
    rc, rep = fuzz_report("sum", bins, "small.txt", 2000, "--seed", "1")
    assert rc == 1 and rep["verdict"] == "divergent" and rep["seed"] == 1
    f = rep["finding"]
    assert f["found_at"] <= 2000 and f["channel"] == "stdout"
    stdin = base64.b64decode(f["input"]["stdin_b64"])
    assert abs(int(stdin)) in (2**31, 2**31 + 1), stdin  # shrunk to the 32-bit boundary
    assert rep["traced"]["verdict"] == "divergent"


@pytest.mark.parametrize(("name", "seed_file"), [("average", "small.txt"), ("shout", "small-text.txt"),
                                                  ("largest", "small.txt")])
def test_translation_bugs_found_from_the_seed(name: str, seed_file: str, bins: Path) -> None:
    """Division (`//` vs `/`), Unicode (bytes vs characters), empty input: found, shrunk, repeatable by seed.
    (--no-trace-explain: untraced only, so this runs without eBPF.)"""
    rc, rep = fuzz_report(name, bins, seed_file, 2000, "--seed", "7", "--no-explain")
    assert rc == 1, rep
    f = rep["finding"]
    assert f["shrunk_size"] <= f["found_size"] and f["shrunk_size"] <= 8, f
    _, rep2 = fuzz_report(name, bins, seed_file, 2000, "--seed", "7", "--no-explain")
    assert rep2["finding"]["input"] == f["input"] and rep2["finding"]["found_at"] == f["found_at"]


@pytest.mark.bpf
@pytest.mark.usefixtures("bpf_ready")
def test_case_file_with_one_large_case(bins: Path, tmp_path: Path) -> None:
    """examples/pairs/stdin/sum.cases.jsonl (the demo's case file): exit 1, JUnit holds every case, one failure."""
    junit = tmp_path / "junit.xml"
    r = validate("--original", original("sum"), "--transpiled", str(bins / "sum"), "--cases",
                 str(PAIRS / "sum.cases.jsonl"), "--junit", str(junit))
    assert r.returncode == 1, r.stdout + r.stderr
    root = ET.parse(junit).getroot()
    cases = {c.get("name"): c for c in root.iter("testcase")}
    assert set(cases) == {"small", "negative", "many", "large"}
    failed = [name for name, c in cases.items() if c.find("failure") is not None]
    assert failed == ["large"]
    assert "4000000000" in (cases["large"].find("failure").get("message") or "") + (cases["large"].find("failure").text or "")


DOUBLE_PY = 'import sys\nprint(int(sys.argv[1]) * 2 if sys.argv[1].lstrip("-").isdigit() else "bad")\n'
DOUBLE_C = r"""
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
int main(int argc, char **argv) {
    const char *p = argv[1][0] == '-' ? argv[1] + 1 : argv[1];
    int ok = *p != 0;
    for (; *p; p++)
        ok = ok && isdigit((unsigned char)*p);
    if (!ok) { puts("bad"); return 0; }
    printf("%d\n", atoi(argv[1]) * 2);
    return 0;
}
"""


def test_arguments_are_mutated_and_shrunk(tmp_path: Path) -> None:
    """`-- 5`: the argument is a mutation target; the overflow shrinks to the boundary 2^30."""
    (tmp_path / "double.py").write_text(DOUBLE_PY)
    (tmp_path / "double.c").write_text(DOUBLE_C)
    subprocess.run(["cc", "-O2", "-w", "-o", str(tmp_path / "double"), str(tmp_path / "double.c")], check=True)
    r = validate("--original", f"{sys.executable} {tmp_path / 'double.py'}", "--transpiled", str(tmp_path / "double"),
                 "--fuzz", "1000", "--seed", "3", "--no-explain", "--json", "--", "5")
    assert r.returncode == 1, r.stdout + r.stderr
    f = json.loads(r.stdout)["finding"]
    assert abs(int(f["input"]["args"][0])) in (2**30, 2**30 + 1), f


TMP_WRITER = ('import os, sys, time\np = "/tmp/sysweave-fuzz-fixed.txt"\nopen(p, "w").write(sys.stdin.read())\n'
              'time.sleep(0.01)\nprint(open(p).read()); os.unlink(p)\n')


@pytest.mark.skipif(__import__("os").geteuid() != 0, reason="needs root (mount namespaces)")
def test_fuzz_private_tmp_keeps_the_sides_apart(tmp_path: Path) -> None:
    """Both sides write one fixed /tmp path at the same time. Exploring runs share /tmp and may race, but a
    divergence counts only if it repeats with each side in its own /tmp: no false finding (before: 'exit 1 vs
    exit 0' on the empty input)."""
    (tmp_path / "w.py").write_text(TMP_WRITER)
    (tmp_path / "seed.txt").write_text("abc\n")
    prog = f"{sys.executable} {tmp_path / 'w.py'}"
    r = validate("--original", prog, "--transpiled", prog, "--stdin", str(tmp_path / "seed.txt"), "--fuzz", "40",
                 "--seed", "1", "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    rep = json.loads(r.stdout)
    Path("/tmp/sysweave-fuzz-fixed.txt").unlink(missing_ok=True)  # exploring runs used the host's /tmp
    assert rep["finding"] is None and rep["ignored"] == []
