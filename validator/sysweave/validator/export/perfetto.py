"""UnifiedTrace -> Chrome/Perfetto trace JSON (opens in ui.perfetto.dev and chrome://tracing).

One track per process and thread; GPU kernels/transfers on a per-device track (their CPU-side driver calls,
``side`` "api", on the calling thread), NVML readings as counter tracks of the process, compute blocks on
their thread; causal edges as flow arrows (ph "s" -> "f"). Times in µs (the format's unit).
"""

from __future__ import annotations

from typing import Any

from sysweave.schemas.events import UnifiedTrace
from sysweave.validator.export.kinds import GPU_TID_BASE, ChromeView, view_of

__all__ = ["GPU_TID_BASE", "to_chrome_trace"]


def _place(v: ChromeView, e: Any, pid: int, ts: float) -> tuple[int, list[dict[str, Any]]]:
    """The Chrome events of one exported event (``kinds.ChromeView``) and the thread it sits on."""
    if v.counters is not None:
        return e.h.tid, [{"ph": "C", "name": f"{v.name} {label}", "pid": pid, "ts": ts, "args": {label: value}}
                         for label, value in v.counters]
    cat = type(e).__name__
    if v.instant:
        return e.h.tid, [{"ph": "i", "s": "t", "name": v.name, "cat": cat, "pid": pid, "tid": e.h.tid, "ts": ts,
                          "args": v.args}]
    tid = e.h.tid if v.tid is None else v.tid
    out = [{"ph": "M", "name": "thread_name", "pid": pid, "tid": tid, "args": {"name": v.track_name}}] \
        if v.track_name else []
    out.append({"ph": "X", "name": v.name, "cat": cat, "pid": pid, "tid": tid, "ts": ts,
                "dur": max(e.h.duration_ns / 1000, 0.001), "args": v.args})
    return tid, out


def to_chrome_trace(trace: UnifiedTrace) -> dict[str, Any]:
    """The trace as Chrome trace JSON (module docstring); each event placed by its kind (``kinds.view_of``)."""
    events: list[dict[str, Any]] = []
    t0 = min((p.start_wall_ns for p in trace.processes.values()), default=0)
    where: dict[bytes, tuple[int, int, float]] = {}  # event id -> (pid, tid, ts): ends of flow arrows
    for pid, (_, p) in enumerate(sorted(trace.processes.items()), start=1):  # synthetic pids: pids collide
        label = f"{' '.join(p.argv)[:80] or 'process'} [{p.host_id} pid {p.pid}]"  # across hosts
        events.append({"ph": "M", "name": "process_name", "pid": pid, "args": {"name": label}})
        for e in p.events:
            ts = (e.h.wall_ns - t0) / 1000
            v = view_of(e).chrome(e)
            tid = e.h.tid
            if v is not None:
                tid, placed = _place(v, e, pid, ts)
                events += placed
            where[e.h.event_id] = (pid, tid, ts)
    for i, edge in enumerate(trace.edges):
        if edge.src in where and edge.dst in where:
            (sp, st, sts), (dp, dt, dts) = where[edge.src], where[edge.dst]
            events.append({"ph": "s", "id": i, "name": edge.kind.name, "cat": "causal", "pid": sp, "tid": st, "ts": sts})
            events.append({"ph": "f", "bp": "e", "id": i, "name": edge.kind.name, "cat": "causal", "pid": dp, "tid": dt,
                           "ts": dts})
    return {"traceEvents": events, "displayTimeUnit": "ns",
            "otherData": {"trace_id": trace.trace_id.hex(), "generator": "sysweave"}}
