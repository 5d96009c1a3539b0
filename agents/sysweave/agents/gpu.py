"""GPU capture above the NVML/CUPTI boundary: device inventory (NVML) and activity records -> events.

CUPTI's activity API delivers records for kernels (CONCURRENT_KERNEL) and copies (MEMCPY) with start/end
timestamps in ns of its own clock; ``ActivityClock`` maps them onto CLOCK_MONOTONIC and the wall clock with
one offset taken at start-up (the same anchor scheme as the eBPF agent). The converters are pure, so the
pipeline is tested here with recorded readings; ``tools/gpu_check.py`` exercises NVML and a real kernel
launch on a machine with a GPU.

Errors::

    GpuUnavailable   -- no NVIDIA driver / NVML / CUPTI here (the message says which)
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sysweave.schemas.errors import AgentError
from sysweave.schemas.events import CausalStamp, EventHeader, GpuKernel, GpuMemoryTransfer, MemcpyKind, make_event_id

__all__ = ["CUPTI_MEMCPY_KIND", "ActivityClock", "GpuUnavailable", "kernel_event", "memcpy_event", "nvml_devices"]

# CUPTI_ActivityMemcpyKind -> ours (1 HtoD, 2 DtoH, 8 DtoD, 10 PtoP; HtoH is 7)
CUPTI_MEMCPY_KIND = {1: MemcpyKind.HTOD, 2: MemcpyKind.DTOH, 7: MemcpyKind.HTOH, 8: MemcpyKind.DTOD, 10: MemcpyKind.PEER}


class GpuUnavailable(AgentError):
    pass


@dataclass(frozen=True, slots=True)
class ActivityClock:
    """GPU activity timestamps -> (monotonic ns, wall ns). Built from one simultaneous reading of the
    activity clock and CLOCK_MONOTONIC/CLOCK_REALTIME. Example: activity 5_000 at monotonic 1_000_000
    -> an activity stamp of 7_000 is monotonic 1_002_000."""

    activity_at_anchor: int
    mono_at_anchor: int
    wall_minus_mono: int

    @classmethod
    def anchored(cls, activity_now_ns: int) -> ActivityClock:
        mono = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
        wall = time.clock_gettime_ns(time.CLOCK_REALTIME)
        return cls(activity_now_ns, mono, wall - mono)

    def mono(self, activity_ns: int) -> int:
        return self.mono_at_anchor + (activity_ns - self.activity_at_anchor)


def _header(rec: Mapping[str, Any], clock: ActivityClock, host: str, pid: int, producer: int, seq: int) -> EventHeader:
    start, end = int(rec["start"]), int(rec["end"])
    if end < start:
        raise ValueError(f"activity record ends before it starts ({start} > {end})")
    mono = clock.mono(start)
    return EventHeader(make_event_id(producer, seq), host, pid, int(rec.get("threadId", pid)) or pid, mono,
                       mono + clock.wall_minus_mono, end - start, CausalStamp(seq, 0))


def kernel_event(rec: Mapping[str, Any], clock: ActivityClock, host: str, pid: int, producer: int, seq: int) -> GpuKernel:
    """A CUPTI kernel activity record (name, start, end, deviceId, streamId, gridX..Z, blockX..Z,
    correlationId) as a GpuKernel event."""
    return GpuKernel(_header(rec, clock, host, pid, producer, seq), str(rec["name"]), int(rec.get("deviceId", 0)),
                     int(rec.get("streamId", 0)),
                     tuple(int(rec.get(f"grid{a}", 1)) for a in "XYZ"), tuple(int(rec.get(f"block{a}", 1)) for a in "XYZ"),
                     int(rec.get("correlationId", 0)), side="device")


def memcpy_event(rec: Mapping[str, Any], clock: ActivityClock, host: str, pid: int, producer: int,
                 seq: int) -> GpuMemoryTransfer:
    """A CUPTI memcpy activity record (copyKind, bytes, start, end, deviceId, streamId, correlationId)."""
    kind = CUPTI_MEMCPY_KIND.get(int(rec["copyKind"]))
    if kind is None:
        raise ValueError(f"unknown CUPTI memcpy kind {rec['copyKind']!r}")
    return GpuMemoryTransfer(_header(rec, clock, host, pid, producer, seq), kind, int(rec["bytes"]),
                             int(rec.get("deviceId", 0)), int(rec.get("streamId", 0)), int(rec.get("correlationId", 0)),
                             side="device")


def nvml_devices() -> list[dict[str, Any]]:
    """Every GPU with its utilisation and memory, and the processes using it (pid -> bytes)."""
    try:
        import pynvml
    except ImportError as exc:
        raise GpuUnavailable("nvidia-ml-py is not installed (pip install nvidia-ml-py)") from exc
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as exc:
        raise GpuUnavailable(f"NVML could not start: {exc} (no NVIDIA driver on this machine?)") from exc
    try:
        out = []
        for i in range(pynvml.nvmlDeviceGetCount()):
            h = pynvml.nvmlDeviceGetHandleByIndex(i)
            mem = pynvml.nvmlDeviceGetMemoryInfo(h)
            util = pynvml.nvmlDeviceGetUtilizationRates(h)
            try:
                procs = {p.pid: p.usedGpuMemory or 0 for p in pynvml.nvmlDeviceGetComputeRunningProcesses(h)}
            except pynvml.NVMLError:
                procs = {}
            name = pynvml.nvmlDeviceGetName(h)
            out.append({"index": i, "name": name.decode() if isinstance(name, bytes) else name,
                        "memory_total": mem.total, "memory_used": mem.used, "gpu_util_pct": util.gpu,
                        "mem_util_pct": util.memory, "driver": pynvml.nvmlSystemGetDriverVersion(), "processes": procs})
        return out
    finally:
        pynvml.nvmlShutdown()
