"""UnifiedTrace -> Chrome/Perfetto trace JSON (opens in ui.perfetto.dev and chrome://tracing).

One track per process and thread; GPU kernels/transfers on a per-device track (their CPU-side driver calls,
``side`` "api", on the calling thread), NVML readings as counter tracks of the process, compute blocks on
their thread; causal edges as flow arrows (ph "s" -> "f"). Times in µs (the format's unit).
"""

from __future__ import annotations

from typing import Any

from sysweave.schemas.events import (
    ComputeBlock,
    GpuKernel,
    GpuMemoryTransfer,
    GpuSample,
    Mark,
    SyscallSpan,
    TranspilerDecision,
    UnifiedTrace,
)

GPU_TID_BASE = 1_000_000_000
COMPUTE_TID = 999_999_999


def to_chrome_trace(trace: UnifiedTrace) -> dict[str, Any]:
    events: list[dict[str, Any]] = []
    t0 = min((p.start_wall_ns for p in trace.processes.values()), default=0)
    pids: dict[tuple[str, int], int] = {}
    where: dict[bytes, tuple[int, int, float]] = {}
    for n, (key, p) in enumerate(sorted(trace.processes.items()), start=1):
        pid = pids[key] = n  # one synthetic pid per (host, pid): pids collide across hosts
        label = f"{' '.join(p.argv)[:80] or 'process'} [{p.host_id} pid {p.pid}]"
        events.append({"ph": "M", "name": "process_name", "pid": pid, "args": {"name": label}})
        for e in p.events:
            ts = (e.h.wall_ns - t0) / 1000
            dur = e.h.duration_ns / 1000
            if isinstance(e, SyscallSpan):
                tid, name, args = e.h.tid, e.name, {"ret": e.ret, **{k: str(v) for k, v in e.args.items()}}
            elif isinstance(e, (GpuKernel, GpuMemoryTransfer)) and e.side == "api":  # the driver call, on its thread
                tid = e.h.tid
                name = f"launch {e.name}" if isinstance(e, GpuKernel) else f"cuMemcpy {e.kind.name} {e.bytes} B"
                args = {"side": "api", "correlation_id": e.correlation_id}
                if isinstance(e, GpuKernel):
                    args.update(grid=str(list(e.grid)), block=str(list(e.block)))
            elif isinstance(e, (GpuKernel, GpuMemoryTransfer)):
                tid = GPU_TID_BASE + e.device
                name = e.name if isinstance(e, GpuKernel) else f"memcpy {e.kind.name} {e.bytes} B"
                args = {"device": e.device, "stream": e.stream}
                events.append({"ph": "M", "name": "thread_name", "pid": pid, "tid": tid, "args": {"name": f"GPU {e.device}"}})
            elif isinstance(e, GpuSample):  # NVML readings as counter tracks of the process (None: not reported)
                track = f"GPU {e.device}" + (f" pid {e.process_pid}" if e.process_pid else "")
                for label, v in (("util %", e.gpu_util_pct), ("memory util %", e.mem_util_pct),
                                 ("memory used MiB", None if e.memory_used_bytes is None else e.memory_used_bytes / 2**20),
                                 ("power W", None if e.power_mw is None else e.power_mw / 1000),
                                 ("SM clock MHz", e.sm_clock_mhz)):
                    if v is not None:
                        events.append({"ph": "C", "name": f"{track} {label}", "pid": pid, "ts": ts, "args": {label: v}})
                where[e.h.event_id] = (pid, e.h.tid, ts)
                continue
            elif isinstance(e, ComputeBlock):  # on its thread's track: it nests around the syscalls it made
                tid, name = e.h.tid, e.name
                args = {"op": e.op, "elements": e.elements, "symbol": e.symbol, "source": e.source,
                        "decision_id": e.decision_id, **{k: str(v) for k, v in e.attrs.items()}}
            elif isinstance(e, (TranspilerDecision, Mark)):  # instants on the thread that reported them
                where[e.h.event_id] = (pid, e.h.tid, ts)
                if isinstance(e, Mark):
                    name, args = f"mark {e.name}", {k: str(v) for k, v in e.attrs.items()}
                else:
                    name = f"decision {e.decision_id} {e.kind}: {e.chosen}"
                    args = {"source_location": e.source_location, "target_symbol": e.target_symbol,
                            "alternatives": list(e.alternatives), "reason": e.reason, "source": e.source,
                            **{k: str(v) for k, v in e.attrs.items()}}
                events.append({"ph": "i", "s": "t", "name": name, "cat": type(e).__name__, "pid": pid, "tid": e.h.tid,
                               "ts": ts, "args": args})
                continue
            else:
                where[e.h.event_id] = (pid, e.h.tid, ts)
                continue
            where[e.h.event_id] = (pid, tid, ts)
            events.append({"ph": "X", "name": name, "cat": type(e).__name__, "pid": pid, "tid": tid, "ts": ts,
                           "dur": max(dur, 0.001), "args": args})
    for i, edge in enumerate(trace.edges):
        if edge.src in where and edge.dst in where:
            (sp, st, sts), (dp, dt, dts) = where[edge.src], where[edge.dst]
            events.append({"ph": "s", "id": i, "name": edge.kind.name, "cat": "causal", "pid": sp, "tid": st, "ts": sts})
            events.append({"ph": "f", "bp": "e", "id": i, "name": edge.kind.name, "cat": "causal", "pid": dp, "tid": dt,
                           "ts": dts})
    return {"traceEvents": events, "displayTimeUnit": "ns",
            "otherData": {"trace_id": trace.trace_id.hex(), "generator": "sysweave"}}
