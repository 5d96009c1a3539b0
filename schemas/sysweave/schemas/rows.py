"""UnifiedTrace -> ClickHouse rows, one mapping for every store (chdb embedded, server via clickhouse-driver).

Rows are dicts keyed by the column names of the ``sql/`` DDL; strings that may hold arbitrary bytes
(payloads, event ids) stay ``bytes`` and each sink encodes them for its protocol.
"""

from __future__ import annotations

import json
import time
from typing import Any

from sysweave.schemas.events import (
    CausalEdge,
    ClockEstimate,
    ComputeBlock,
    Event,
    GpuKernel,
    GpuMemoryTransfer,
    LostEvents,
    ProcessEvent,
    SyscallAggregate,
    SyscallSpan,
    TranspilerDecision,
    UnifiedTrace,
)

Row = dict[str, Any]


def _header(trace_id: str, e: Event) -> Row:
    h = e.h
    return {"trace_id": trace_id, "event_id": h.event_id, "host_id": h.host_id, "pid": h.pid, "tid": h.tid,
            "mono_ns": h.mono_ns, "wall_ns": h.wall_ns, "duration_ns": h.duration_ns,
            "lamport": h.stamp.lamport, "hlc": h.stamp.hlc}


def _args_json(args: dict[str, Any]) -> str:
    return json.dumps({k: (v.hex() if isinstance(v, bytes) else v) for k, v in args.items()}, ensure_ascii=False)


def event_row(trace_id: str, e: Event) -> tuple[str, Row] | None:
    """(table, row) for one event; None for types stored elsewhere (HostInfo lives in traces.hosts)."""
    r = _header(trace_id, e)
    if isinstance(e, SyscallSpan):
        r.update(nr=e.nr, name=e.name, ret=e.ret, args=_args_json(e.args), payload=e.payload or b"",
                 payload_len=e.payload_len, reason=e.reason)
        return "syscall_spans", r
    if isinstance(e, ProcessEvent):
        r.update(type=int(e.type), parent_pid=e.parent_pid, child_pid=e.child_pid, filename=e.filename,
                 argv=list(e.argv), exit_code=e.exit_code, signal=e.signal, comm=e.comm)
        return "process_events", r
    if isinstance(e, SyscallAggregate):
        r.update(nr=e.nr, name=e.name, calls=e.calls, errors=e.errors, total_ns=e.total_ns, hist_log2=list(e.hist_log2))
        return "syscall_aggregates", r
    if isinstance(e, GpuKernel):
        r.update(name=e.name, device=e.device, stream=e.stream, grid=list(e.grid), block=list(e.block),
                 correlation_id=e.correlation_id)
        return "gpu_kernels", r
    if isinstance(e, GpuMemoryTransfer):
        r.update(kind=int(e.kind), bytes=e.bytes, device=e.device, stream=e.stream, correlation_id=e.correlation_id)
        return "gpu_transfers", r
    if isinstance(e, ComputeBlock):
        r.update(name=e.name, kind=e.kind, flops=e.flops, bytes=e.bytes)
        return "compute_blocks", r
    if isinstance(e, TranspilerDecision):
        r.update(source_location=e.source_location, decision=e.decision, rationale=e.rationale, target=e.target)
        return "transpiler_decisions", r
    if isinstance(e, CausalEdge):
        r.update(src=e.src, dst=e.dst, kind=int(e.kind), detail=e.detail)
        return "causal_edges", r
    if isinstance(e, ClockEstimate):
        r.update(host=e.host, reference=e.reference, offset_ns=e.offset_ns, bound_ns=e.bound_ns,
                 drift_ppb=e.drift_ppb, samples=e.samples)
        return "clock_estimates", r
    if isinstance(e, LostEvents):
        r.update(source=e.source, count=e.count, detail=e.detail)
        return "lost_events", r
    return None


def trace_rows(trace: UnifiedTrace, label: str = "", backend: str = "", exit_code: int = 0) -> dict[str, list[Row]]:
    """Every row a trace produces, by table."""
    tid = trace.trace_id.hex()
    version = time.time_ns()
    tables: dict[str, list[Row]] = {}
    events = 0
    for span in trace.processes.values():
        parent = span.parent or ("", 0)
        tables.setdefault("processes", []).append({
            "trace_id": tid, "host_id": span.host_id, "pid": span.pid, "parent_host_id": parent[0],
            "parent_pid": parent[1], "argv": list(span.argv), "start_wall_ns": span.start_wall_ns,
            "end_wall_ns": span.end_wall_ns, "exit_code": span.exit_code, "signal": span.signal, "version": version})
        for e in span.events:
            out = event_row(tid, e)
            if out:
                tables.setdefault(out[0], []).append(out[1])
                events += 1
    trace_level: list[Event] = [*trace.edges, *trace.clocks, *trace.lost]
    for ev in trace_level:
        out = event_row(tid, ev)
        if out:
            tables.setdefault(out[0], []).append(out[1])
    starts = [p.start_wall_ns for p in trace.processes.values()] or [0]
    ends = [p.end_wall_ns for p in trace.processes.values()] or [0]
    roots = [p for p in trace.processes.values() if p.parent is None]
    tables["traces"] = [{
        "trace_id": tid, "label": label, "root_argv": list(roots[0].argv) if roots else [],
        "start_wall_ns": min(starts), "end_wall_ns": max(ends),
        "hosts": sorted({p.host_id for p in trace.processes.values()}), "processes": len(trace.processes),
        "events": events, "lost_events": sum(x.count for x in trace.lost), "late_events": trace.late_events,
        "exit_code": exit_code, "backend": backend, "closed": 1 if trace.closed else 0, "version": version}]
    return tables
