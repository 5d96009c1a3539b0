"""JUnit XML from a validate report (:mod:`.report`), as GitHub Actions, GitLab and Jenkins read it.

One ``<testcase>`` per case. A behavioural divergence is a ``<failure type="divergent">`` whose message is
the first divergence; a translation slower than ``--max-slowdown`` is a ``<failure type="slowdown">``; a case
that could not be decided, was interrupted or hit an error is an ``<error>`` with the reason. A run that
never reached a case (usage error, interrupted before the first) still writes one testcase named after
the run, so a CI dashboard always shows why.

    >>> from sysweave.validator.equivalence.report import build_report, case_entry
    >>> xml = junit_xml(build_report([case_entry("a", "divergent", "exit code 0 vs 1")]))
    >>> '<failure message="exit code 0 vs 1" type="divergent">' in xml
    True
"""

from __future__ import annotations

import os
import socket
import tempfile
import time
import xml.etree.ElementTree as ET
from typing import Any

__all__ = ["junit_xml", "write_junit"]

_INVALID_XML = {c: None for c in range(32) if c not in (9, 10, 13)}


def _clean(s: Any) -> str:
    return str(s).translate(_INVALID_XML)


def _case_time(c: dict[str, Any]) -> float:
    return sum(c[side].get("wall_s") or 0.0 for side in ("original", "transpiled"))


def _testcase(suite: ET.Element, c: dict[str, Any]) -> tuple[int, int]:
    tc = ET.SubElement(suite, "testcase", classname="sysweave.validate", name=_clean(c["name"]),
                       time=f"{_case_time(c):.3f}")
    body = [f"original: {_side(c['original'])}", f"transpiled: {_side(c['transpiled'])}"]
    body += [f"then: {s.get('explanation', '')}" for s in c.get("symptoms", [])[:10]]
    body += [f"note: {n}" for n in c.get("notes", [])]
    failures = errors = 0
    if c["verdict"] == "divergent":
        el = ET.SubElement(tc, "failure", message=_clean(c["reason"]), type="divergent")
        failures += 1
    elif c["verdict"] != "equivalent":
        el = ET.SubElement(tc, "error", message=_clean(c["reason"]), type=c["verdict"])
        errors += 1
    else:
        el = None
    if el is not None:
        el.text = _clean("\n".join(body))
    if c.get("slow"):
        slow = ET.SubElement(tc, "failure", message=_clean(c["slow"]), type="slowdown")
        slow.text = _clean(c["slow"])
        failures += 1 if el is None or c["verdict"] != "divergent" else 0
    ET.SubElement(tc, "system-out").text = _clean("\n".join(body))
    return failures, errors


def _side(s: dict[str, Any]) -> str:
    status = "timed out" if s.get("timed_out") else (
        "did not run" if s.get("exit_code") is None else f"exit {s['exit_code']}")
    wall = "" if s.get("wall_s") is None else f" after {s['wall_s']:.3f} s"
    return status + wall


def junit_xml(report: dict[str, Any]) -> str:
    """The report as a JUnit XML document (UTF-8 text)."""
    cases = list(report["cases"])
    if not cases or (report["verdict"] in ("error", "interrupted")
                     and all(c["verdict"] != "interrupted" for c in cases)):
        cases.append({"name": report.get("run_name", "sysweave validate"), "verdict": report["verdict"],
                      "reason": report["reason"], "original": {}, "transpiled": {}})
    root = ET.Element("testsuites", name="sysweave validate")
    suite = ET.SubElement(root, "testsuite", name="sysweave validate", hostname=socket.gethostname(),
                          timestamp=time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()))
    props = ET.SubElement(suite, "properties")
    for key in ("original", "transpiled", "verdict", "reason", "version"):
        if isinstance(report.get(key), (str, int)):
            ET.SubElement(props, "property", name=key, value=_clean(report[key]))
    for w in report.get("warnings", []):
        ET.SubElement(props, "property", name="warning", value=_clean(w))
    failures = errors = 0
    for c in cases:
        f, e = _testcase(suite, c)
        failures, errors = failures + f, errors + e
    total = f"{sum(_case_time(c) for c in cases):.3f}"
    for el in (root, suite):
        el.set("tests", str(len(cases)))
        el.set("failures", str(failures))
        el.set("errors", str(errors))
        el.set("time", total)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def write_junit(path: str, report: dict[str, Any]) -> None:
    """Write the JUnit file atomically (a reader never sees half a file). Raises OSError."""
    text = junit_xml(report)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".junit-", suffix=".xml", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
