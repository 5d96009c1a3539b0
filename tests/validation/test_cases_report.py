"""The case model (JSON Lines, every mistake named), the report on every exit path, JUnit XML, hang verdicts:
pure parts of validate, no tracing."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sysweave.validator.equivalence.cases import Case, CaseError, load_cases, parse_env
from sysweave.validator.equivalence.hang import Hang, hang_verdict
from sysweave.validator.equivalence.harness import case_argv
from sysweave.validator.equivalence.junit import junit_xml
from sysweave.validator.equivalence.observe import Obs, StreamObs
from sysweave.validator.equivalence.report import build_report, case_entry, error_report, exit_status, side_entry


def test_cases_load_with_paths_from_the_case_file(tmp_path: Path) -> None:
    (tmp_path / "in.txt").write_text("9\n")
    (tmp_path / "data").mkdir()
    f = tmp_path / "cases.jsonl"
    f.write_text('{"name": "a", "args": ["1"], "stdin": "x\\n", "env": {"K": "v"}, "timeout_s": 2}\n\n'
                 '{"name": "b", "stdin_file": "in.txt", "workdir": "data"}\n')
    a, b = load_cases(str(f))
    assert (a.name, a.args, a.stdin_bytes(), a.env, a.timeout_s) == ("a", ("1",), b"x\n", {"K": "v"}, 2.0)
    assert b.timeout_s is None and a.to_dict()["timeout_s"] == 2.0
    assert b.stdin_file == str(tmp_path / "in.txt") and b.stdin_bytes() == b"9\n"
    assert b.workdir == str(tmp_path / "data") and Case().stdin_bytes() is None


def test_every_mistake_in_a_case_file_is_named_with_its_line(tmp_path: Path) -> None:
    f = tmp_path / "cases.jsonl"
    f.write_text('{"name": "a"}\nnot json\n{"name": "a"}\n{"name": "c", "args": "1", "color": 1}\n'
                 '{"name": "d", "stdin": "x", "stdin_file": "y"}\n{"name": "e", "stdin_file": "missing.txt"}\n'
                 '{"name": "f", "env": {"A": 1}}\n[1]\n{"name": "g", "timeout_s": 0}\n')
    with pytest.raises(CaseError) as exc:
        load_cases(str(f))
    msg = str(exc.value)
    for line, what in [(2, "not JSON"), (3, "already used on line 1"), (4, "unknown key(s) color"),
                       (4, '"args" must be a list'), (5, "not both"), (6, "missing.txt does not exist"),
                       (7, '"env" must be an object of strings'), (8, "a case is a JSON object"),
                       (9, '"timeout_s" must be a number of seconds > 0')]:
        assert f"{f}:{line}: " in msg and what in msg, (line, what, msg)
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    with pytest.raises(CaseError, match="no cases"):
        load_cases(str(empty))
    with pytest.raises(CaseError, match="No such file"):
        load_cases(str(tmp_path / "nope.jsonl"))


def test_env_options_and_case_arguments() -> None:
    assert parse_env(["A=1", "B=x=y", "C="]) == {"A": "1", "B": "x=y", "C": ""}
    with pytest.raises(CaseError, match="KEY=VALUE"):
        parse_env(["A"])
    assert case_argv("/bin/echo hi", Case(args=("a b", "c"))) == ["/bin/echo", "hi", "a b", "c"]
    assert case_argv("echo $X | cat", Case(args=("1",))) == ["/bin/sh", "-c", 'echo $X | cat "$@"', "sh", "1"]


def test_report_verdict_exit_status_and_every_exit_path() -> None:
    eq, div = case_entry("a", "equivalent", "same"), case_entry("b", "divergent", "exit code 0 vs 1")
    und = case_entry("c", "undecided", "both hung")
    assert build_report([eq])["exit_status"] == 0 and build_report([eq, div, und])["exit_status"] == 1
    assert build_report([eq, und])["verdict"] == "undecided"
    r = build_report([eq], signal_number=15, cases_total=3)
    assert (r["verdict"], r["exit_status"], r["signal"]) == ("interrupted", 143, "SIGTERM")
    assert "after 1 of 3 case(s)" in r["reason"]
    assert exit_status(build_report([], signal_number=2)) == 130
    e = error_report("usage: --original is required")
    assert (e["verdict"], e["exit_status"], e["version"], e["cases"]) == ("error", 2, 1, [])
    json.dumps(e)  # JSON all the way down


def test_junit_has_every_case_and_the_first_divergence() -> None:
    slow = case_entry("s", "equivalent", "same", side_entry(0, 1.0), side_entry(0, 3.0), slow="3.00x the time")
    r = build_report([case_entry("a", "equivalent", "same"), case_entry("b", "divergent", "byte 0 differs"),
                      case_entry("c", "undecided", "neither side finished"), slow])
    root = ET.fromstring(junit_xml(r).split("\n", 1)[1])
    suite = root.find("testsuite")
    assert suite is not None and (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("4", "2", "1")
    cases = {c.get("name"): c for c in suite.iter("testcase")}
    fail = cases["b"].find("failure")
    assert fail is not None and fail.get("message") == "byte 0 differs" and fail.get("type") == "divergent"
    assert cases["c"].find("error") is not None and cases["a"].find("failure") is None
    assert [f.get("type") for f in cases["s"].iter("failure")] == ["slowdown"]
    usage = ET.fromstring(junit_xml(error_report("usage: bad")).split("\n", 1)[1])
    assert [e.get("message") for e in usage.iter("error")] == ["usage: bad"]


def _obs(out: bytes, code: int | None, sig: int | None = None) -> Obs:
    o = Obs(exit_code=code, exit_signal=sig)
    o.streams["stdout"] = StreamObs(out, len(out))
    return o


def test_a_hang_is_divergent_and_an_earlier_difference_comes_first() -> None:
    v = hang_verdict(_obs(b"1\n2\n", 0), _obs(b"1\n", None, 9), Hang(0.02, None, 5.0))
    assert v.verdict == "divergent" and v.divergence is not None and v.divergence.kind == "hang"
    assert v.explanation == "the transpiled run did not finish within 5 s; the original exited 0 after 0.02 s"
    v = hang_verdict(_obs(b"1\n2\n", None, 9), _obs(b"1\n2\n", 3), Hang(None, 0.5, 8.0))
    assert v.explanation == "the original did not finish within 8 s; the transpiled run exited 3 after 0.50 s"
    v = hang_verdict(_obs(b"1\n2\n", 0), _obs(b"7\n", None, 9), Hang(0.02, None, 5.0))
    assert v.divergence is not None and v.divergence.resource == "stdout"
    assert [s.kind for s in v.symptoms] == ["hang"]


def test_a_program_still_running_at_the_kill_is_the_hang_not_a_difference() -> None:
    from sysweave.validator.equivalence.processes import ProgramNode

    a, b = _obs(b"1\n", 0), _obs(b"1\n", None, 9)
    a.programs = ProgramNode(("h", 1), ("sh",), 0, None)
    b.programs = ProgramNode(("h", 2), ("sh",), None, 9, [ProgramNode(("h", 3), ("sleep", "100"), None, None)])
    v = hang_verdict(a, b, Hang(0.05, None, 3.0))
    assert v.divergence is not None and v.divergence.kind == "hang"
    b.programs.children.append(ProgramNode(("h", 4), ("rm", "-rf", "x"), 0, None))  # one it ran and finished
    v = hang_verdict(a, b, Hang(0.05, None, 3.0))
    assert v.divergence is not None and v.divergence.resource == "processes" and "rm -rf x" in v.explanation


def test_the_docstring_examples_hold() -> None:
    import doctest

    from sysweave.cli import validate_cases
    from sysweave.validator.equivalence import cases, hang, junit, report

    for module in (cases, hang, junit, report, validate_cases):
        assert doctest.testmod(module).failed == 0, module.__name__


@given(st.binary(max_size=40), st.integers(min_value=0, max_value=40), st.binary(max_size=8),
       st.sampled_from(["original", "transpiled"]))
def test_hang_property_a_prefix_is_the_hang_anything_else_comes_first(out: bytes, cut: int, extra: bytes,
                                                                      hung: str) -> None:
    """What the hung side wrote is a prefix of the finished side's: the divergence is the hang; otherwise the first
    differing byte is, and the hang follows as a symptom."""
    written = out[:cut] + extra
    finished, stuck = _obs(out, 0), _obs(written, None, 9)
    a, b = (finished, stuck) if hung == "transpiled" else (stuck, finished)
    hang = Hang(0.1, None, 2.0) if hung == "transpiled" else Hang(None, 0.1, 2.0)
    v = hang_verdict(a, b, hang)
    assert v.verdict == "divergent" and v.divergence is not None
    if out.startswith(written):
        assert v.divergence.kind == "hang" and v.symptoms == []
        assert v.explanation.startswith(f"the {'transpiled run' if hung == 'transpiled' else 'original'} did not finish")
    else:
        assert v.divergence.resource == "stdout" and v.symptoms[-1].kind == "hang"
