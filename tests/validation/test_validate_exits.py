"""Every exit path of `sysweave validate` prints exactly one JSON report and writes --junit (issue 20): usage
error, missing workdir or stdin file, command not found, one side hanging, both hanging, SIGTERM mid-run,
SIGKILL (nothing it started outlives it); both sides broken the same way warns; reports carry the cost."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from sysweave.agents.proctree import containment, v1_memory_root

SYSWEAVE = [sys.executable, "-m", "sysweave.cli.main", "validate", "--no-store", "--json"]

pytestmark = [pytest.mark.bpf, pytest.mark.usefixtures("bpf_ready")]


def _run(args: list[str], junit: Path, env: dict[str, str] | None = None) -> tuple[int, dict[str, Any], ET.Element, str]:
    r = subprocess.run([*SYSWEAVE, "--junit", str(junit), *args], capture_output=True, text=True, timeout=120,
                       env={**os.environ, **(env or {})})
    report = json.loads(r.stdout)  # exactly one JSON object: json.loads refuses trailing data
    return r.returncode, report, ET.parse(junit).getroot(), r.stderr


LOSSY = "python3 -c 'for i in range(3000): print(i, flush=True)'"
EXITS = [  # (name, arguments, exit status, verdict, words in the reason)
    ("usage", ["--original", "true", "--runs", "many"], 2, "error", "usage: argument --runs"),
    ("no-commands", ["--original", "true"], 2, "error", "give --original and --transpiled"),
    ("missing-workdir", ["--original", "true", "--transpiled", "true", "--workdir", "/nonexistent-sw"], 2, "error",
     "not a directory"),
    ("missing-stdin", ["--original", "true", "--transpiled", "true", "--stdin", "/nonexistent-sw.txt"], 2, "error",
     "--stdin /nonexistent-sw.txt: no such file"),
    ("not-found", ["--original", "no-such-program-sw", "--transpiled", "true"], 2, "undecided", "command not found"),
    ("one-hangs", ["--original", "true", "--transpiled", "sleep 1000", "--timeout", "2"], 1, "divergent",
     "the transpiled run did not finish within 2 s; the original exited 0 after"),
    ("both-hang", ["--original", "sleep 1000", "--transpiled", "sleep 1001", "--timeout", "1"], 2, "undecided",
     "neither side finished"),
    ("lost-events", ["--original", LOSSY, "--transpiled", LOSSY], 2, "undecided", "could not decide"),
]


@pytest.mark.parametrize(("name", "args", "status", "verdict", "reason"), EXITS, ids=[e[0] for e in EXITS])
def test_exit_path_has_one_report_and_junit(name: str, args: list[str], status: int, verdict: str, reason: str,
                                            tmp_path: Path) -> None:
    t0 = time.monotonic()
    env = {"SYSWEAVE_TEST_DROP_EVERY": "50"} if name == "lost-events" else None  # the capture's loss hook
    code, report, junit, _ = _run(args, tmp_path / "j.xml", env)
    assert (code, report["verdict"], report["exit_status"], report["version"]) == (status, verdict, status, 1)
    assert reason in report["reason"], report["reason"]
    assert junit.get("tests") == "1" and junit.get("failures" if verdict == "divergent" else "errors") == "1"
    if name == "one-hangs":  # bounded: the hang costs the timeout, not more (start-up ~3 s on a loaded host)
        case = report["cases"][0]
        assert case["transpiled"]["timed_out"] and case["original"]["exit_code"] == 0
        assert time.monotonic() - t0 < 15


def _tree_of(marker: str) -> list[str]:
    r = subprocess.run(["pgrep", "-f", f"^{marker}$"], capture_output=True, text=True)  # not validate's own argv
    return r.stdout.split()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGKILL])
def test_a_signal_stops_every_process_it_started(sig: signal.Signals, tmp_path: Path) -> None:
    """Two hanging sides; one of them forks a grandchild that leaves the process group (setsid)."""
    if sig is signal.SIGKILL and containment()[0] is None and v1_memory_root() is None:  # PDEATHSIG: the child only
        pytest.skip(f"SIGKILL containment needs a run cgroup: {containment()[1]}")
    marker = f"{1000 + uuid.uuid4().int % 1000}.{os.getpid()}"  # a unique sleep argument to find them by
    junit = tmp_path / "j.xml"
    p = subprocess.Popen([*SYSWEAVE, "--junit", str(junit), "--original", f"sh -c 'setsid sleep {marker} & sleep "
                          f"{marker}'", "--transpiled", f"sleep {marker}"], stdout=subprocess.PIPE, text=True)
    end = time.monotonic() + 30
    while len(_tree_of(f"sleep {marker}")) < 2 and time.monotonic() < end:
        time.sleep(0.1)
    assert len(_tree_of(f"sleep {marker}")) == 2
    t0 = time.monotonic()
    p.send_signal(sig)
    out, _ = p.communicate(timeout=10)
    stopped = time.monotonic() - t0
    deadline = time.monotonic() + 3  # a SIGKILL: the watchdog kills the tree as soon as it sees us gone
    while _tree_of(f"sleep {marker}") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _tree_of(f"sleep {marker}") == []
    if sig is signal.SIGKILL:
        assert p.returncode == -signal.SIGKILL
        return
    assert stopped < 2 and p.returncode == 128 + sig
    report = json.loads(out)
    assert report["verdict"] == "interrupted" and report["signal"] == sig.name
    assert [c["verdict"] for c in report["cases"]] == ["interrupted"]  # the case cut short: how far, no verdict
    assert ET.parse(junit).getroot().get("errors") == "1"


def test_both_sides_broken_the_same_way_warns(tmp_path: Path) -> None:
    args = ["--original", "sh -c 'cat < input.txt'", "--transpiled", "sh -c './prog < input.txt'"]
    code, report, _, err = _run(args, tmp_path / "j.xml")
    assert code == 0 and report["verdict"] == "equivalent"
    assert "cannot open input.txt" in report["warnings"][0] and "cannot open input.txt" in err
    code, report, _, _ = _run([*args, "--strict"], tmp_path / "j.xml")
    assert code == 2 and report["verdict"] == "undecided"


def test_cases_stdin_and_cost(tmp_path: Path) -> None:
    (tmp_path / "in.txt").write_text("3\n4\n")
    cases = tmp_path / "cases.jsonl"
    cases.write_text('{"name": "file", "stdin_file": "in.txt"}\n{"name": "big", "stdin": "100000\\n"}\n')
    prog = "python3 -c 'import sys; print(sum(int(x) for x in sys.stdin.read().split()) % {})'"
    code, report, junit, _ = _run(["--original", prog.format(1 << 64), "--transpiled", prog.format(1 << 16),
                                   "--cases", str(cases), "--max-slowdown", "50"], tmp_path / "j.xml")
    verdicts = {c["name"]: c["verdict"] for c in report["cases"]}
    assert code == 1 and verdicts == {"file": "equivalent", "big": "divergent"}
    assert [t.get("name") for t in junit.iter("testcase")] == ["file", "big"] and junit.get("failures") == "1"
    side = report["cases"][0]["transpiled"]
    assert side["wall_s"] > 0 and side["cpu_s"] > 0 and side["max_rss_kb"] > 1000  # a Python interpreter's
    assert set(report["cases"][0]["ratio"]) == {"wall", "cpu", "memory"}
    code, report, junit, _ = _run(["--original", "true", "--transpiled", "sleep 0.3", "--max-slowdown", "2"],
                                  tmp_path / "j.xml")
    assert code == 1 and report["summary"]["slow"] == 1 and "--max-slowdown 2" in report["cases"][0]["slow"]
    assert [f.get("type") for f in junit.iter("failure")] == ["slowdown"]


SUM_PY = "import sys\nprint(sum(int(x) for x in sys.stdin.read().split()))\n"
SUM_C = """#include <stdio.h>
int main(void) { int x, total = 0; while (scanf("%d", &x) == 1) total += x; printf("%d\\n", total); return 0; }
"""


def test_stdin_and_a_case_file_find_the_overflow_of_a_c_translation(tmp_path: Path) -> None:
    """Issue 17's check: the translation agrees on a small input and overflows on a large one (int vs big int)."""
    (tmp_path / "sum.py").write_text(SUM_PY)
    (tmp_path / "sum.c").write_text(SUM_C)
    subprocess.run(["cc", "-O1", "-o", str(tmp_path / "sum"), str(tmp_path / "sum.c")], check=True)
    (tmp_path / "small.txt").write_text("1 2 3\n")
    (tmp_path / "large.txt").write_text("2147483647 1\n")
    py, c = f"{sys.executable} {tmp_path / 'sum.py'}", str(tmp_path / "sum")
    code, report, _, _ = _run(["--original", py, "--transpiled", c, "--stdin", str(tmp_path / "small.txt")],
                              tmp_path / "j.xml")
    assert code == 0 and report["verdict"] == "equivalent"
    cases = tmp_path / "cases.jsonl"
    cases.write_text('{"name": "small", "stdin_file": "small.txt"}\n{"name": "large", "stdin_file": "large.txt"}\n')
    code, report, junit, _ = _run(["--original", py, "--transpiled", c, "--cases", str(cases)], tmp_path / "j.xml")
    assert code == 1 and [x["verdict"] for x in report["cases"]] == ["equivalent", "divergent"]
    assert [t.get("name") for t in junit.iter("testcase")] == ["small", "large"]
    (failure,) = junit.iter("failure")
    assert failure.get("message") == "byte 0 of stdout differs: '2147483648\\n' vs '-2147483648\\n'"


def test_stdin_from_a_pipe_reaches_both_sides_and_every_case(tmp_path: Path) -> None:
    """``--stdin -`` (what `producer | sysweave validate ...` users type) is read once: both programs of every
    case get the same bytes, where a second read of the pipe would give the second side nothing."""
    (tmp_path / "sum.py").write_text(SUM_PY)
    cases = tmp_path / "cases.jsonl"
    cases.write_text('{"name": "piped"}\n{"name": "own", "stdin": "5 5\\n"}\n')
    py = f"{sys.executable} {tmp_path / 'sum.py'}"
    r = subprocess.run([*SYSWEAVE, "--original", py, "--transpiled", "awk '{for(i=1;i<=NF;i++)s+=$i} END{print s}'",
                        "--cases", str(cases), "--stdin", "-"], input="20 22\n", capture_output=True, text=True,
                       timeout=120)
    report = json.loads(r.stdout)
    assert r.returncode == 0, report
    assert [c["verdict"] for c in report["cases"]] == ["equivalent", "equivalent"]
    r = subprocess.run([*SYSWEAVE, "--original", py, "--transpiled", "echo 43", "--stdin", "-"], input="20 22\n",
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 1
    assert json.loads(r.stdout)["reason"] == "byte 1 of stdout differs: '42\\n' vs '43\\n'"


def test_a_tree_that_ignores_sigterm_is_killed_after_the_grace_and_a_second_signal_exits_at_once(tmp_path: Path) -> None:
    marker = f"{4000 + uuid.uuid4().int % 1000}.{os.getpid()}"
    script = tmp_path / "deaf.sh"  # the root shell and its sleep (which inherits it) ignore the signals
    script.write_text(f"trap '' TERM INT HUP\nsleep {marker}\nexit 0\n")
    for second in (False, True):
        p = subprocess.Popen([*SYSWEAVE, "--original", f"/bin/sh {script}", "--transpiled", "true"],
                             stdout=subprocess.PIPE, text=True)
        end = time.monotonic() + 30
        while not _tree_of(f"sleep {marker}") and time.monotonic() < end:
            time.sleep(0.05)
        t0 = time.monotonic()
        p.send_signal(signal.SIGTERM)
        if second:
            time.sleep(0.2)
            p.send_signal(signal.SIGTERM)
        out, _ = p.communicate(timeout=10)
        stopped = time.monotonic() - t0
        assert p.returncode == 143 and _tree_of(f"sleep {marker}") == []
        if second:  # at once: no grace, no report
            assert stopped < 0.9 and out == ""
        else:  # SIGKILL after the 1 s grace, then the report
            assert 1.0 <= stopped < 2.0 and json.loads(out)["verdict"] == "interrupted"
