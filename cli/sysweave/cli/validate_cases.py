"""Run every case of ``sysweave validate`` on both sides and turn each into a report entry (glue).

Timeouts (docs/validate-report.md): a run may take at most ``--timeout``; once a run of either side has
finished, every later run of the case gets ``max(10 x the slowest finished run, 5 s)``, at most
``--timeout`` (:func:`bounded_timeout`). A side killed at its timeout while the other finished is
DIVERGENT (:mod:`sysweave.validator.equivalence.hang`); both killed is "could not decide".
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sysweave.validator.equivalence.cases import Case
from sysweave.validator.equivalence.compare import Verdict, compare
from sysweave.validator.equivalence.evidence import comparison_gaps, describe
from sysweave.validator.equivalence.hang import Hang, both_hung_reason, hang_verdict
from sysweave.validator.equivalence.harness import Harness, HarnessError, SideSummary
from sysweave.validator.equivalence.report import case_entry, side_entry

__all__ = ["MIN_BOUND_S", "SLOWDOWN_FACTOR", "CaseOutcome", "Interrupted", "bounded_timeout", "never_ran",
           "run_case"]

SLOWDOWN_FACTOR = 10.0  # a run may take this many times the finished side's time ...
MIN_BOUND_S = 5.0  # ... but at least this long
_SHELLS = ("sh", "bash", "dash", "zsh", "ksh")
_SHELL_ERROR = re.compile(rb"^(/\S*/)?(sh|bash|dash|zsh|ksh)(: line \d+|: \d+)?: ")


class Interrupted(Exception):
    """validate received SIGINT/SIGTERM/SIGHUP; ``signal_number`` says which."""

    def __init__(self, signal_number: int, entry: dict[str, Any] | None = None) -> None:
        super().__init__(f"signal {signal_number}")
        self.signal_number = signal_number
        self.entry = entry  # the case that was cut short: what each side did until then, no verdict


@dataclass
class CaseOutcome:
    entry: dict[str, Any]
    legacy: dict[str, Any] | None = None  # the comparison's report (store_report's input), when compared
    sides: tuple[SideSummary, SideSummary] | None = None
    warnings: list[str] = field(default_factory=list)


def bounded_timeout(cap_s: float, finished_walls: list[float]) -> float:
    """The timeout for the next run: ``cap_s`` until a run finished, then max(10 x slowest, 5 s) <= cap_s.

    >>> bounded_timeout(120, []), bounded_timeout(120, [0.02]), bounded_timeout(120, [3.0]), bounded_timeout(5, [9])
    (120, 5.0, 30.0, 5)
    """
    if not finished_walls:
        return cap_s
    return min(cap_s, max(SLOWDOWN_FACTOR * max(finished_walls), MIN_BOUND_S))


def _side(s: SideSummary | None) -> dict[str, Any]:
    if s is None:
        return side_entry()
    perf = s.performance()
    last = s.runs[-1].result
    return side_entry(None if last.timed_out else s.obs.exit_code if s.obs.exit_signal is None
                      else 128 + s.obs.exit_signal, perf["wall_s"], perf["cpu_s"], perf["max_rss_kb"] or None,
                      last.timed_out, timeout_s=s.limit_s, signal=s.obs.exit_signal, runs=len(s.runs),
                      accounting=last.accounting)


def never_ran(side: SideSummary) -> str | None:
    """Why a side looks like it never ran the program (a shell error, exit 126/127), or None."""
    o = side.obs
    code = o.exit_code
    if code in (None, 0) or o.stdout:
        return None
    first = (o.stderr.splitlines() or [b""])[0][:200].decode("utf-8", "replace")
    root = o.programs
    shell_only = root is not None and root.role[:1] and root.role[0] in _SHELLS and not root.children
    if code in (126, 127) or (shell_only and (_SHELL_ERROR.match(o.stderr) or not o.stderr)):
        return f"exited {code}: {first!r}" if first else f"exited {code} with no output"
    return None


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(b / a, 4) if a and b else None


def _compare(original: SideSummary, transpiled: SideSummary, limit: float) -> tuple[str, Verdict | None, str]:
    """('equivalent'|'divergent'|'undecided', the verdict if any, the reason)."""
    hung_a, hung_b = original.timed_out, transpiled.timed_out
    if hung_a and hung_b:
        return "undecided", None, both_hung_reason(original.obs, transpiled.obs, original.limit_s, transpiled.limit_s)
    if hung_a or hung_b:
        hang = Hang(None if hung_a else original.performance()["wall_s"],
                    None if hung_b else transpiled.performance()["wall_s"],
                    original.limit_s if hung_a else transpiled.limit_s)
        v = hang_verdict(original.obs, transpiled.obs, hang)
        return v.verdict, v, v.explanation
    v = compare(original.obs, transpiled.obs)
    gaps = comparison_gaps(original.obs, transpiled.obs, v.evidence) if v.verdict == "equivalent" else []
    if gaps:  # equivalence would be a guess about what was not captured (evidence.py)
        return "undecided", None, f"could not decide: the runs agree on everything compared, but {describe(gaps)}"
    return v.verdict, v, v.explanation


def _cut_short(case: Case, sides: list[SideSummary]) -> dict[str, Any]:
    """The entry of a case whose run a signal cut short: each side as far as it got, never a verdict."""
    a = _side(sides[0])
    b = _side(sides[1]) if len(sides) > 1 else side_entry()
    who = "original" if len(sides) == 1 else "transpiled run"
    done = "" if len(sides) == 1 else f"; the original had {'timed out' if sides[0].timed_out else 'finished'}"
    return case_entry(case.name, "interrupted", f"the {who} was interrupted after {sides[-1].performance()['wall_s']:.2f} s"
                      f"{done}; not compared", a, b)


def run_case(args: argparse.Namespace, harness: Harness, case: Case,
             data_flow: Callable[[SideSummary], list[tuple[str, str, str]]]) -> CaseOutcome:
    """Both sides of one case; raises :class:`Interrupted` when a run was cut short by a signal."""
    sides: list[SideSummary] = []
    try:
        for cmd in (args.original, args.transpiled):
            walls = [r.result.wall_s for s in sides for r in s.runs if not r.result.timed_out]
            side = harness.run_side(cmd, args.runs, case, bounded_timeout(case.timeout_s or args.timeout, walls))
            sides.append(side)
            if side.interrupted:
                raise Interrupted(side.interrupted, _cut_short(case, sides))
    except HarnessError as exc:
        return CaseOutcome(case_entry(case.name, "undecided", f"could not decide: {exc}",
                                      _side(sides[0] if sides else None)))
    original, transpiled = sides
    for s in (original, transpiled):
        if not s.timed_out:
            s.obs.edges = data_flow(s)
    verdict_name, verdict, reason = _compare(original, transpiled, args.timeout)
    a, b = _side(original), _side(transpiled)
    ratio = {"wall": _ratio(a["wall_s"], b["wall_s"]), "cpu": _ratio(a["cpu_s"], b["cpu_s"]),
             "memory": _ratio(a["max_rss_kb"], b["max_rss_kb"])}
    detail: dict[str, Any] = verdict.to_dict() if verdict else {}
    detail.pop("verdict", None)
    entry = case_entry(case.name, verdict_name, reason, a, b, ratio=ratio, **detail,
                       masked={"original": original.masked, "transpiled": transpiled.masked},
                       reruns={"original": original.reruns, "transpiled": transpiled.reruns})
    out = CaseOutcome(entry, sides=(original, transpiled))
    if verdict is not None:
        perf_a, perf_b = original.performance(), transpiled.performance()
        out.legacy = {**verdict.to_dict(), "original": args.original, "transpiled": args.transpiled,
                      "masked": entry["masked"], "runs": args.runs, "tolerance": args.tolerance,
                      "performance": {"original": perf_a, "transpiled": perf_b,
                                      "speedup": perf_a["wall_s"] / perf_b["wall_s"] if perf_b["wall_s"] else None}}
        entry["performance"] = out.legacy["performance"]
    _checks(args, out, original, transpiled)
    return out


def _checks(args: argparse.Namespace, out: CaseOutcome, original: SideSummary, transpiled: SideSummary) -> None:
    """The warnings (both sides broken the same way) and the --max-slowdown check of a compared case."""
    e = out.entry
    why_a, why_b = never_ran(original), never_ran(transpiled)
    if why_a and why_b and e["verdict"] == "equivalent":
        w = (f"case {e['name']!r}: both sides {why_a} before running the program - the commands may be wrong; "
             "relative paths resolve in the fresh workdir (--workdir, --stdin)")
        out.warnings.append(w if why_a == why_b else w.replace(f"both sides {why_a}", f"the original {why_a}, "
                                                               f"the transpiled run {why_b},"))
    limit = getattr(args, "max_slowdown", None)
    ratio = e["ratio"]["wall"]
    if limit is not None and ratio is not None and ratio > limit and e["verdict"] == "equivalent":
        e["slow"] = (f"the translation takes {ratio:.2f}x the original's time "
                     f"({e['transpiled']['wall_s']:.3f} s vs {e['original']['wall_s']:.3f} s; --max-slowdown {limit:g})")
