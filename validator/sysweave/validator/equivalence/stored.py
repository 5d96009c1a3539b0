"""Validation of two stored traces (pure): Obs of an assembled trace, the report.

Used by ``sysweave validate --original-trace A --transpiled-trace B`` and by ``validator serve`` for requests
sent with ``--submit``. A stored trace is validated away from the machines' disks: files by their
``FileState`` events, stdout/stderr rebuilt from the captured write payloads, every resource named by host
when the trace spans several; order from the assembled trace's Lamport stamps.
The request itself is ``sysweave.schemas.topics.ValidationRequest`` (the message on TOPIC_VALIDATION).
"""

from __future__ import annotations

from typing import Any

from sysweave.schemas.events import Event, SyscallAggregate, UnifiedTrace
from sysweave.validator.equivalence.compare import compare
from sysweave.validator.equivalence.evidence import capture_gaps, comparison_gaps, describe
from sysweave.validator.equivalence.observe import Obs, edge_roles, extract

__all__ = ["performance", "trace_events", "trace_obs", "validate_traces"]


def trace_events(trace: UnifiedTrace) -> list[Event]:
    """Every process's events of a stored trace, and its loss reports."""
    return [*(e for p in trace.processes.values() for e in p.events), *trace.lost]


def trace_obs(trace: UnifiedTrace) -> Obs:
    """The effects of an assembled (stored) trace: every host's tree, stdout/stderr from payloads."""
    roots = [p for p in trace.processes.values() if p.parent is None]
    exit_code = roots[0].exit_code if len(roots) == 1 else None
    obs = extract(trace_events(trace), "", 0, None, None, exit_code, capture_stdio=True)
    if len(roots) == 1:
        obs.edges = edge_roles(trace, (roots[0].host_id, roots[0].pid))
    return obs


def performance(trace: UnifiedTrace) -> dict[str, Any]:
    """Wall time (first start to last end over the trace's processes) and exact syscall counts."""
    spans = [p for p in trace.processes.values() if p.start_wall_ns]
    wall = (max(p.end_wall_ns for p in spans) - min(p.start_wall_ns for p in spans)) / 1e9 if spans else 0.0
    calls = sum(e.calls for p in trace.processes.values() for e in p.events if isinstance(e, SyscallAggregate))
    return {"wall_s": max(wall, 0.0), "syscalls": calls, "processes": len(trace.processes),
            "hosts": sorted({p.host_id for p in trace.processes.values()})}


def validate_traces(original: UnifiedTrace, transpiled: UnifiedTrace, backends: tuple[str, str] = ("", "")) -> dict[str, Any]:
    """The validation report of two stored traces (verdict, divergence, symptoms, evidence, performance).

    A stored trace cannot be captured again: one that lost evidence (:mod:`.evidence`) makes the verdict
    "undecided", with the reason as its explanation."""
    a, b = trace_obs(original), trace_obs(transpiled)
    verdict = compare(a, b)
    report = verdict.to_dict()
    gaps = [f"the {side} trace: {describe(g)}" for side, t in (("original", original), ("transpiled", transpiled))
            if (g := capture_gaps(trace_events(t)))]
    if not gaps and verdict.verdict == "equivalent" and (cg := comparison_gaps(a, b, verdict.evidence)):
        gaps = [f"the traces agree on everything compared, but {describe(cg)}"]
    if gaps:
        report.update(verdict="undecided", explanation="could not decide: " + "; ".join(gaps), divergence=None,
                      symptoms=[], confidence=0.0)
    pa, pb = performance(original), performance(transpiled)
    speedup = pa["wall_s"] / pb["wall_s"] if pa["wall_s"] and pb["wall_s"] else None
    return {**report, "original_trace_id": original.trace_id.hex(),
            "transpiled_trace_id": transpiled.trace_id.hex(),
            "performance": {"original": pa, "transpiled": pb, "speedup": speedup},
            "backend": {"original": backends[0], "transpiled": backends[1]}}
