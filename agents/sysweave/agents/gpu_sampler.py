"""NVML sampling (``--gpu``, every ``--gpu-interval``): per GPU utilisation, memory used, power and SM clock;
per traced process its GPU utilisation and memory. Readings become ``GpuSample`` events.

:func:`read_nvml` takes one reading through nvidia-ml-py (a plain dict, what the tests record);
:func:`samples_from_reading` is the pure converter. A value NVML does not support on a device stays ``None``
(never 0). Device readings sit on the timeline of a traced process that uses the GPU (else the lowest traced
pid); the sampler thread's queue is bounded and counts what it drops.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from sysweave.agents.gpu import GpuUnavailable
from sysweave.schemas.events import CausalStamp, Event, EventHeader, GpuSample, make_event_id

__all__ = ["NvmlSampler", "read_nvml", "samples_from_reading"]


def _maybe(fn: Callable[..., Any], *args: Any) -> Any:
    """NVML's 'not supported' (and any other per-query NVMLError) -> None."""
    try:
        return fn(*args)
    except Exception:
        return None


def read_nvml(nvml: Any, last_seen_us: int = 0) -> dict[str, Any]:
    """One reading of every GPU: {"mono_ns", "devices": [{index, name, gpu_util_pct, mem_util_pct, memory_used,
    memory_total, power_mw, sm_clock_mhz, processes: {pid: {"memory": bytes|None, "sm_util_pct": int|None}}}]}.
    ``last_seen_us``: per-process utilisation samples newer than this NVML timestamp."""
    devices = []
    mono = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
    for i in range(nvml.nvmlDeviceGetCount()):
        h = nvml.nvmlDeviceGetHandleByIndex(i)
        name = _maybe(nvml.nvmlDeviceGetName, h)
        util = _maybe(nvml.nvmlDeviceGetUtilizationRates, h)
        mem = _maybe(nvml.nvmlDeviceGetMemoryInfo, h)
        procs: dict[int, dict[str, int | None]] = {}
        for p in _maybe(nvml.nvmlDeviceGetComputeRunningProcesses, h) or []:
            procs[int(p.pid)] = {"memory": p.usedGpuMemory, "sm_util_pct": None}
        for s in _maybe(nvml.nvmlDeviceGetProcessUtilization, h, last_seen_us) or []:
            procs.setdefault(int(s.pid), {"memory": None, "sm_util_pct": None})["sm_util_pct"] = int(s.smUtil)
        devices.append({
            "index": i, "name": name.decode() if isinstance(name, bytes) else (name or ""),
            "gpu_util_pct": util.gpu if util else None, "mem_util_pct": util.memory if util else None,
            "memory_used": mem.used if mem else None, "memory_total": mem.total if mem else None,
            "power_mw": _maybe(nvml.nvmlDeviceGetPowerUsage, h),
            "sm_clock_mhz": _maybe(nvml.nvmlDeviceGetClockInfo, h, nvml.NVML_CLOCK_SM),
            "processes": procs,
        })
    return {"mono_ns": mono, "devices": devices}


def samples_from_reading(reading: Mapping[str, Any], traced: Iterable[int], host_id: str, wall_offset_ns: int,
                         producer_id: int, first_seq: int, duration_ns: int = 0) -> list[GpuSample]:
    """One reading -> a GpuSample per device and per traced process on it. Example: a device with processes
    {41: ..., 99: ...} and traced {41} -> two samples (device on pid 41's timeline, then pid 41's own)."""
    traced = set(traced)
    mono = int(reading["mono_ns"])
    out: list[GpuSample] = []
    seq = first_seq

    def header(pid: int) -> EventHeader:
        nonlocal seq
        seq += 1
        return EventHeader(make_event_id(producer_id, seq), host_id, pid, pid, mono, mono + wall_offset_ns,
                           duration_ns, CausalStamp(seq, 0))

    for d in reading["devices"]:
        procs = {int(k): v for k, v in d.get("processes", {}).items()}
        users = sorted(p for p in procs if p in traced)
        owner = users[0] if users else (min(traced) if traced else 0)
        if not owner:
            continue  # nothing traced yet: a device reading would sit on no timeline
        out.append(GpuSample(header(owner), int(d["index"]), 0, str(d.get("name", "")), d.get("gpu_util_pct"),
                             d.get("mem_util_pct"), d.get("memory_used"), d.get("memory_total"), d.get("power_mw"),
                             d.get("sm_clock_mhz")))
        for pid in users:
            p = procs[pid]
            out.append(GpuSample(header(pid), int(d["index"]), pid, str(d.get("name", "")), p.get("sm_util_pct"),
                                 None, p.get("memory"), d.get("memory_total")))
    return out


class NvmlSampler:
    """A thread that reads NVML every ``interval_s`` and sends GpuSample events to ``sink``.

    Raises GpuUnavailable at construction when nvidia-ml-py or the driver is missing (the caller says so in
    one line and traces on)."""

    def __init__(self, interval_s: float, host_id: str, wall_offset_ns: int, sink: Callable[[Event], None],
                 producer_id: int | None = None) -> None:
        try:
            import pynvml
        except ImportError as exc:
            raise GpuUnavailable("nvidia-ml-py is not installed (pip install nvidia-ml-py)") from exc
        try:
            pynvml.nvmlInit()
        except Exception as exc:
            raise GpuUnavailable(f"NVML could not start: {exc} (no NVIDIA GPU or driver here)") from exc
        if interval_s <= 0:
            raise ValueError("--gpu-interval must be positive")
        self.nvml = pynvml
        self.interval_s, self.host_id, self.wall_offset_ns, self.sink = interval_s, host_id, wall_offset_ns, sink
        self.producer_id = producer_id if producer_id is not None else random.getrandbits(64)
        self.pids: set[int] = set()
        self.root_pid = 0
        self.samples = 0
        self.errors = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sysweave-nvml", daemon=True)
        self._seq = 0

    def start(self, root_pid: int = 0) -> None:
        self.root_pid = root_pid
        self._thread.start()

    def _run(self) -> None:
        last_us = 0
        while not self._stop.wait(self.interval_s):
            try:
                reading = read_nvml(self.nvml, last_us)
            except Exception:
                self.errors += 1
                continue
            last_us = int(time.time() * 1e6) - int(self.interval_s * 1e6)
            traced = set(self.pids) | ({self.root_pid} if self.root_pid else set())
            for s in samples_from_reading(reading, traced, self.host_id, self.wall_offset_ns, self.producer_id,
                                          self._seq, int(self.interval_s * 1e9)):
                self._seq += 1
                self.samples += 1
                self.sink(s)

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5)
        try:
            self.nvml.nvmlShutdown()
        except Exception:
            pass
