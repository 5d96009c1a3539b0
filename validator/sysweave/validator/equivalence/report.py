"""The report of ``sysweave validate``: one JSON object for every exit path, its exit status, the summary table.

The schema is documented in docs/validate-report.md (``version`` below). A report holds one entry per case;
the overall verdict is the worst of them, in this order::

    error > interrupted > divergent > undecided > equivalent

    >>> r = build_report([case_entry("a", "equivalent", "same effects"), case_entry("b", "undecided", "why")])
    >>> r["verdict"], exit_status(r), r["summary"]["undecided"]
    ('undecided', 2, 1)
"""

from __future__ import annotations

import signal
from typing import Any

__all__ = ["EXIT_STATUS", "REPORT_VERSION", "VERDICTS", "build_report", "case_entry", "error_report", "exit_status",
           "side_entry", "summary_table"]

REPORT_VERSION = 1
VERDICTS = ("equivalent", "divergent", "undecided", "interrupted", "error")
_RANK = {"equivalent": 0, "undecided": 1, "divergent": 2, "interrupted": 3, "error": 4}
EXIT_STATUS = {"equivalent": 0, "divergent": 1, "undecided": 2, "error": 2}  # interrupted: 128 + signal


def side_entry(exit_code: int | None = None, wall_s: float | None = None, cpu_s: float | None = None,
               max_rss_kb: int | None = None, timed_out: bool = False, **extra: Any) -> dict[str, Any]:
    """One side's run in a case: exit status (None: it never finished), wall and CPU seconds, peak memory (KiB)."""
    return {"exit_code": exit_code, "wall_s": wall_s, "cpu_s": cpu_s, "max_rss_kb": max_rss_kb,
            "timed_out": timed_out, **extra}


def case_entry(name: str, verdict: str, reason: str, original: dict[str, Any] | None = None,
               transpiled: dict[str, Any] | None = None, **detail: Any) -> dict[str, Any]:
    """One case's result. ``detail``: the comparison's fields (confidence, divergence, symptoms, notes, ...)."""
    if verdict not in VERDICTS:
        raise ValueError(f"unknown verdict {verdict!r}")
    return {"name": name, "verdict": verdict, "reason": reason, "original": original or side_entry(),
            "transpiled": transpiled or side_entry(), **detail}


def build_report(cases: list[dict[str, Any]], warnings: list[str] | None = None, signal_number: int | None = None,
                 error: str | None = None, **top: Any) -> dict[str, Any]:
    """The whole report. ``signal_number``: validate was interrupted by it (verdict "interrupted");
    ``error``: it could not run at all (verdict "error"). ``top``: fields for the top level (commands, flags)."""
    counts = {v: sum(1 for c in cases if c["verdict"] == v) for v in VERDICTS}
    slow = sum(1 for c in cases if c.get("slow"))
    if error is not None:
        verdict, reason = "error", error
    elif signal_number is not None:
        verdict = "interrupted"
        reason = (f"interrupted by {_signal_name(signal_number)} after {len(cases) - counts['interrupted']} of "
                  f"{top.get('cases_total', len(cases))} case(s); no verdict from a run that was cut short")
    elif not cases:
        verdict, reason = "error", "no case was run"
    else:
        verdict = max((c["verdict"] for c in cases), key=lambda v: _RANK[v])
        reason = next(c["reason"] for c in cases if c["verdict"] == verdict) if len(cases) == 1 else \
            _summary_reason(counts, len(cases), slow)
        if len(cases) == 1 and cases[0].get("slow"):
            reason += f"; but {cases[0]['slow']}"
    report: dict[str, Any] = {"schema": "sysweave.validate.report", "version": REPORT_VERSION, "verdict": verdict,
                              "reason": reason, **top, "warnings": list(warnings or []),
                              "summary": {"cases": len(cases), **counts, "slow": slow}, "cases": cases}
    report.pop("cases_total", None)
    if signal_number is not None:
        report["signal"] = _signal_name(signal_number)
    report["exit_status"] = exit_status(report)
    return report


def error_report(reason: str, **top: Any) -> dict[str, Any]:
    """The report of a run that could not start (usage error, unreadable case file): verdict "error", exit 2."""
    return build_report([], error=reason, **top)


def exit_status(report: dict[str, Any]) -> int:
    """0 equivalent, 1 divergent (or slower than --max-slowdown), 2 undecided or error, 128 + N interrupted by
    signal N (130 SIGINT, 143 SIGTERM, 129 SIGHUP)."""
    if report["verdict"] == "interrupted":
        return 128 + signal.Signals[report.get("signal", "SIGINT")].value
    if report["verdict"] == "equivalent" and report.get("summary", {}).get("slow"):
        return 1  # same behaviour, but slower than --max-slowdown allows: a failure of its own kind
    return EXIT_STATUS[report["verdict"]]


def _signal_name(n: int) -> str:
    try:
        return signal.Signals(n).name
    except ValueError:
        return f"SIG{n}"


def _summary_reason(counts: dict[str, int], total: int, slow: int) -> str:
    parts = [f"{counts[v]} {v}" for v in ("divergent", "undecided", "interrupted", "equivalent") if counts[v]]
    more = f" ({slow} slower than allowed)" if slow else ""
    return f"{total} cases: " + ", ".join(parts) + more


def _fmt_s(v: float | None) -> str:
    return "-" if v is None else f"{v:.3f}s"


def summary_table(report: dict[str, Any]) -> str:
    """One line per case: name, verdict, both sides' exit status and time, the time ratio, the reason."""
    rows = [("CASE", "VERDICT", "ORIGINAL", "TRANSPILED", "TIME", "REASON")]
    for c in report["cases"]:
        a, b = c["original"], c["transpiled"]
        ratio = c.get("ratio", {}).get("wall")
        rows.append((c["name"], c["verdict"].upper() + (" (slow)" if c.get("slow") else ""),
                     f"{_status(a)} {_fmt_s(a['wall_s'])}", f"{_status(b)} {_fmt_s(b['wall_s'])}",
                     "-" if ratio is None else f"{ratio:.2f}x", c["reason"]))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(r[:5], widths)) + "  " + r[5] for r in rows]
    s = report["summary"]
    lines.append(f"{s['cases']} case(s): {s['equivalent']} equivalent, {s['divergent']} divergent, "
                 f"{s['undecided']} undecided" + (f", {s['interrupted']} interrupted" if s["interrupted"] else "")
                 + (f", {s['slow']} slower than allowed" if s["slow"] else ""))
    return "\n".join(lines)


def _status(side: dict[str, Any]) -> str:
    if side.get("timed_out"):
        return "timeout"
    if side["exit_code"] is None:
        return "-"
    return f"exit {side['exit_code']}"
