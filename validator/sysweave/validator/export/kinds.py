"""How each event kind is exported: one class per kind, both exports side by side (pure).

Every exporter asks :func:`view_of` for an event's :class:`KindView` — one dictionary lookup by type, no chain of
``isinstance`` checks — and takes from it what it needs:

* ``otlp_span(e)``: the OTLP child span of its process span, ``(name, attributes)`` (the common header
  attributes are added by ``otlp``); None when the kind is not a span.
* ``otlp_event(e)``: a span event on its process span, ``(name, attributes)`` (NVML readings); None otherwise.
* ``chrome(e)``: its place in a Chrome/Perfetto trace (:class:`ChromeView`); None when it has none (it can
  still be the end of a flow arrow, at its thread and time).

A new event kind is one subclass here plus its line in :data:`VIEWS`; kinds absent from it export nothing
(process lifecycle, aggregates, edges, hosts, ...: they shape the trace rather than appear in it). How a
kind is *observed* for equivalence lives in ``validator.equivalence`` (one handler per operation), how a
system call's fds resolve in ``streams.pipeline.fdtrack``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sysweave.schemas.events import (
    ComputeBlock,
    Event,
    GpuKernel,
    GpuMemoryTransfer,
    GpuSample,
    Mark,
    SyscallSpan,
    TranspilerDecision,
)

__all__ = ["GPU_TID_BASE", "VIEWS", "ChromeView", "KindView", "free_attrs", "view_of"]

GPU_TID_BASE = 1_000_000_000  # Chrome track of GPU device d: tid GPU_TID_BASE + d


@dataclass(frozen=True, slots=True)
class ChromeView:
    """An event in a Chrome/Perfetto trace. ``tid`` None: the event's own thread; ``track_name``: name the
    (synthetic) track first; ``instant``: a point ("i") rather than a slice ("X"); ``counters``: counter samples
    (ph "C", named "<name> <label>"; possibly none) instead of a slice."""

    name: str
    args: dict[str, Any] = field(default_factory=dict)
    tid: int | None = None
    track_name: str = ""
    instant: bool = False
    counters: tuple[tuple[str, float], ...] | None = None


def free_attrs(prefix: str, attrs: Mapping[str, Any]) -> dict[str, Any]:
    """SDK/decision attributes as OTLP attribute values (bytes as hex; None left out: OTLP has no null)."""
    out: dict[str, Any] = {}
    for k, v in attrs.items():
        if isinstance(v, bytes):
            out[prefix + k] = v.hex()
        elif isinstance(v, tuple):
            out[prefix + k] = list(v)
        elif v is not None:
            out[prefix + k] = v
    return out


def _strs(attrs: Mapping[str, Any]) -> dict[str, str]:
    return {k: str(v) for k, v in attrs.items()}


class KindView:
    """The exports of one event kind (module docstring); the base exports nothing."""

    def otlp_span(self, e: Any) -> tuple[str, dict[str, Any]] | None:
        return None

    def otlp_event(self, e: Any) -> tuple[str, dict[str, Any]] | None:
        return None

    def chrome(self, e: Any) -> ChromeView | None:
        return None


class SyscallView(KindView):
    def otlp_span(self, e: SyscallSpan) -> tuple[str, dict[str, Any]]:
        a: dict[str, Any] = {"syscall.name": e.name, "syscall.nr": e.nr, "syscall.ret": e.ret}
        if e.failed:
            a["syscall.errno"] = e.errno
        for k, v in e.args.items():
            if isinstance(v, (int, str, bool)):
                a[f"syscall.args.{k}"] = v
            elif isinstance(v, tuple):
                a[f"syscall.args.{k}"] = list(v)
        if e.payload is not None:
            a["syscall.payload_len"] = e.payload_len
        return e.name, a

    def chrome(self, e: SyscallSpan) -> ChromeView:
        return ChromeView(e.name, {"ret": e.ret, **_strs(e.args)})


class GpuKernelView(KindView):
    """A launch: the driver call ("api") on the calling thread, its execution ("device") on the GPU's track."""

    def otlp_span(self, e: GpuKernel) -> tuple[str, dict[str, Any]]:
        a = {"gpu.kernel.name": e.name, "gpu.device": e.device, "gpu.stream": e.stream, "gpu.grid": list(e.grid),
             "gpu.block": list(e.block), "gpu.side": e.side, "gpu.correlation_id": e.correlation_id}
        return (f"cuLaunchKernel {e.name}" if e.side == "api" else f"gpu kernel {e.name}"), a

    def chrome(self, e: GpuKernel) -> ChromeView:
        if e.side == "api":
            return ChromeView(f"launch {e.name}", {"side": "api", "correlation_id": e.correlation_id,
                                                   "grid": str(list(e.grid)), "block": str(list(e.block))})
        return ChromeView(e.name, {"device": e.device, "stream": e.stream}, GPU_TID_BASE + e.device, f"GPU {e.device}")


class GpuMemcpyView(KindView):
    def otlp_span(self, e: GpuMemoryTransfer) -> tuple[str, dict[str, Any]]:
        a = {"gpu.memcpy.kind": e.kind.name, "gpu.memcpy.bytes": e.bytes, "gpu.device": e.device, "gpu.side": e.side,
             "gpu.correlation_id": e.correlation_id}
        return (f"cuMemcpy {e.kind.name}" if e.side == "api" else f"gpu memcpy {e.kind.name}"), a

    def chrome(self, e: GpuMemoryTransfer) -> ChromeView:
        if e.side == "api":
            return ChromeView(f"cuMemcpy {e.kind.name} {e.bytes} B", {"side": "api", "correlation_id": e.correlation_id})
        return ChromeView(f"memcpy {e.kind.name} {e.bytes} B", {"device": e.device, "stream": e.stream},
                          GPU_TID_BASE + e.device, f"GPU {e.device}")


class ComputeView(KindView):
    """On its thread's track: it nests around the system calls it made."""

    def otlp_span(self, e: ComputeBlock) -> tuple[str, dict[str, Any]]:
        a = {"compute.name": e.name, "compute.operation": e.op, "compute.elements": e.elements,
             "compute.symbol": e.symbol, "compute.source": e.source, "compute.decision_id": e.decision_id,
             **free_attrs("compute.attrs.", e.attrs)}
        return f"compute {e.name}", a

    def chrome(self, e: ComputeBlock) -> ChromeView:
        return ChromeView(e.name, {"op": e.op, "elements": e.elements, "symbol": e.symbol, "source": e.source,
                                   "decision_id": e.decision_id, **_strs(e.attrs)})


class DecisionView(KindView):
    """A transpiler's decision: an instant on the thread that reported it."""

    def otlp_span(self, e: TranspilerDecision) -> tuple[str, dict[str, Any]]:
        a = {"transpiler.decision_id": e.decision_id, "transpiler.source_location": e.source_location,
             "transpiler.target_symbol": e.target_symbol, "transpiler.kind": e.kind, "transpiler.chosen": e.chosen,
             "transpiler.alternatives": list(e.alternatives), "transpiler.reason": e.reason,
             "transpiler.source": e.source, **free_attrs("transpiler.attrs.", e.attrs)}
        return f"decision {e.kind or e.decision_id}: {e.chosen}"[:120], a

    def chrome(self, e: TranspilerDecision) -> ChromeView:
        return ChromeView(f"decision {e.decision_id} {e.kind}: {e.chosen}", {
            "source_location": e.source_location, "target_symbol": e.target_symbol,
            "alternatives": list(e.alternatives), "reason": e.reason, "source": e.source, **_strs(e.attrs)},
            instant=True)


class MarkView(KindView):
    """An SDK mark: an instant on the thread that reported it."""

    def otlp_span(self, e: Mark) -> tuple[str, dict[str, Any]]:
        return f"mark {e.name}", {"mark.name": e.name, **free_attrs("mark.attrs.", e.attrs)}

    def chrome(self, e: Mark) -> ChromeView:
        return ChromeView(f"mark {e.name}", _strs(e.attrs), instant=True)


class GpuSampleView(KindView):
    """NVML readings: span events "gpu.sample" on their process span (they stay inside the trace, under the
    process they describe, through the one exporter — a metrics pipeline would lose the association), and
    counter tracks of the process in Perfetto. Readings NVML did not report (None) are left out."""

    def otlp_event(self, e: GpuSample) -> tuple[str, dict[str, Any]]:
        values = {"gpu.device": e.device, "gpu.process.pid": e.process_pid, "gpu.name": e.name,
                  "gpu.utilization.pct": e.gpu_util_pct, "gpu.memory.utilization.pct": e.mem_util_pct,
                  "gpu.memory.used_bytes": e.memory_used_bytes, "gpu.memory.total_bytes": e.memory_total_bytes,
                  "gpu.power.mw": e.power_mw, "gpu.sm_clock.mhz": e.sm_clock_mhz, "sysweave.lamport": e.h.stamp.lamport}
        return "gpu.sample", {k: v for k, v in values.items() if v is not None}

    def chrome(self, e: GpuSample) -> ChromeView:
        readings = (("util %", e.gpu_util_pct), ("memory util %", e.mem_util_pct),
                    ("memory used MiB", None if e.memory_used_bytes is None else e.memory_used_bytes / 2**20),
                    ("power W", None if e.power_mw is None else e.power_mw / 1000), ("SM clock MHz", e.sm_clock_mhz))
        return ChromeView(f"GPU {e.device}" + (f" pid {e.process_pid}" if e.process_pid else ""),
                          counters=tuple((label, v) for label, v in readings if v is not None))


_NOTHING = KindView()
VIEWS: dict[type, KindView] = {
    SyscallSpan: SyscallView(), GpuKernel: GpuKernelView(), GpuMemoryTransfer: GpuMemcpyView(),
    ComputeBlock: ComputeView(), TranspilerDecision: DecisionView(), Mark: MarkView(), GpuSample: GpuSampleView(),
}


def view_of(e: Event) -> KindView:
    """The exports of ``e``'s kind (a view that exports nothing for kinds without one)."""
    return VIEWS.get(type(e), _NOTHING)
