"""Validation of two stored traces (pure): the typed request, Obs of an assembled trace, the report.

Used by ``sysweave validate --original-trace A --transpiled-trace B`` and by ``validator serve`` for requests
sent with ``--submit``. A stored trace is validated away from the machines' disks: files by their
``FileState`` events, stdout/stderr rebuilt from the captured write payloads, every resource named by host
when the trace spans several; order from the assembled trace's Lamport stamps.

    >>> req = ValidationRequest("job-faithful", "job-broken", request_id="r1")
    >>> ValidationRequest.decode(req.encode()) == req
    True
    >>> try:
    ...     ValidationRequest.decode(b'{"original_trace_id": 3}')
    ... except RequestError as exc:
    ...     print(exc)
    bad validation request: original_trace_id must be a string
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

from sysweave.schemas.errors import ValidatorError
from sysweave.schemas.events import Event, SyscallAggregate, UnifiedTrace
from sysweave.validator.equivalence.compare import compare
from sysweave.validator.equivalence.observe import Obs, edge_roles, extract

__all__ = ["RequestError", "ValidationRequest", "performance", "trace_obs", "validate_traces"]


class RequestError(ValidatorError):
    """A validation request that is not well formed (the service dead-letters it with this message)."""


@dataclass(frozen=True, slots=True)
class ValidationRequest:
    """The message on TOPIC_VALIDATION (JSON): two stored traces, by id or label, to compare."""

    original_trace_id: str
    transpiled_trace_id: str
    request_id: str = ""
    original_label: str = ""  # what the user called each side (shown in the stored report)
    transpiled_label: str = ""
    version: int = 1

    def encode(self) -> bytes:
        return json.dumps(asdict(self), sort_keys=True).encode()

    @classmethod
    def decode(cls, raw: bytes | str) -> ValidationRequest:
        try:
            d = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise RequestError(f"bad validation request: not JSON: {exc}") from exc
        if not isinstance(d, dict):
            raise RequestError("bad validation request: expected a JSON object")
        for name in ("original_trace_id", "transpiled_trace_id"):
            if not isinstance(d.get(name), str) or not d[name]:
                raise RequestError(f"bad validation request: {name} must be a string")
        for name in ("request_id", "original_label", "transpiled_label"):
            if not isinstance(d.get(name, ""), str):
                raise RequestError(f"bad validation request: {name} must be a string")
        version = d.get("version", 1)
        if version != 1:
            raise RequestError(f"bad validation request: version {version!r} is not understood (1 is)")
        return cls(d["original_trace_id"], d["transpiled_trace_id"], d.get("request_id", ""),
                   d.get("original_label", ""), d.get("transpiled_label", ""))


def trace_obs(trace: UnifiedTrace) -> Obs:
    """The effects of an assembled (stored) trace: every host's tree, stdout/stderr from payloads."""
    events: list[Event] = [e for p in trace.processes.values() for e in p.events]
    roots = [p for p in trace.processes.values() if p.parent is None]
    exit_code = roots[0].exit_code if len(roots) == 1 else None
    obs = extract(events + list(trace.lost), "", 0, None, None, exit_code, capture_stdio=True)
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
    """The validation report of two stored traces (verdict, divergence, symptoms, evidence, performance)."""
    a, b = trace_obs(original), trace_obs(transpiled)
    verdict = compare(a, b)
    pa, pb = performance(original), performance(transpiled)
    speedup = pa["wall_s"] / pb["wall_s"] if pa["wall_s"] and pb["wall_s"] else None
    return {**verdict.to_dict(), "original_trace_id": original.trace_id.hex(),
            "transpiled_trace_id": transpiled.trace_id.hex(),
            "performance": {"original": pa, "transpiled": pb, "speedup": speedup},
            "backend": {"original": backends[0], "transpiled": backends[1]}}
