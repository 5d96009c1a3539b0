"""NVML and CUPTI above the driver boundary, from recorded readings: GpuSample events, the CUPTI hook's file
joined to CPU-side launch spans (GPU_LAUNCH / GPU_COMPLETION edges), rows, Perfetto counters, OTLP span events."""

from __future__ import annotations

import json
from pathlib import Path

from sysweave.agents.bpf.uprobes_spec import Probe, UpCall
from sysweave.agents.cuda_probes import CudaTracker, join_cupti
from sysweave.agents.gpu_sampler import read_nvml, samples_from_reading
from sysweave.schemas import codec
from sysweave.schemas.events import (
    CausalEdge,
    EdgeKind,
    Event,
    EventHeader,
    GpuKernel,
    GpuMemoryTransfer,
    GpuSample,
    MemcpyKind,
    ProcessEvent,
    ProcessEventType,
)
from sysweave.schemas.rows import event_row
from sysweave.streams.pipeline.assembly import assemble
from sysweave.validator.export.perfetto import to_chrome_trace

# One reading of an H100 taken through read_nvml (pynvml 12.560) while pid 4242 ran a GEMM loop; pid 777 is
# another user's process (not traced). power_mw/sm_clock from nvmlDeviceGetPowerUsage/GetClockInfo(SM).
READING = {"mono_ns": 7_000_000_000, "devices": [
    {"index": 0, "name": "NVIDIA H100 80GB HBM3", "gpu_util_pct": 97, "mem_util_pct": 41,
     "memory_used": 9_521_070_080, "memory_total": 85_520_809_984, "power_mw": 512_346, "sm_clock_mhz": 1980,
     "processes": {4242: {"memory": 8_589_934_592, "sm_util_pct": 95}, 777: {"memory": 524_288_000, "sm_util_pct": 2}}},
    {"index": 1, "name": "NVIDIA H100 80GB HBM3", "gpu_util_pct": 0, "mem_util_pct": 0, "memory_used": 0,
     "memory_total": 85_520_809_984, "power_mw": None, "sm_clock_mhz": 345, "processes": {}},
]}


def test_nvml_reading_becomes_device_and_process_samples() -> None:
    s = samples_from_reading(READING, {4242, 4243}, "gpu-host", 10**18, 5, 0, 100_000_000)
    assert [(x.device, x.process_pid, x.h.pid) for x in s] == [(0, 0, 4242), (0, 4242, 4242), (1, 0, 4242)]
    dev, proc, idle = s
    assert (dev.gpu_util_pct, dev.memory_used_bytes, dev.power_mw, dev.sm_clock_mhz) == (97, 9_521_070_080, 512_346, 1980)
    assert (proc.gpu_util_pct, proc.memory_used_bytes, proc.mem_util_pct) == (95, 8_589_934_592, None)
    assert idle.power_mw is None  # not supported stays None, never 0
    assert dev.h.wall_ns == 10**18 + 7_000_000_000 and dev.h.duration_ns == 100_000_000
    assert len({x.h.event_id for x in s}) == 3
    batch = codec.Batch(5, 1, 0, tuple(s))
    assert codec.decode_batch(codec.encode_batch(batch)) == batch
    table, row = event_row("t", dev)
    assert table == "gpu_samples" and row["power_mw"] == 512_346 and row["process_pid"] == 0
    assert samples_from_reading(READING, set(), "h", 0, 5, 0) == []  # nothing traced yet: no timeline to sit on


class FakeNvml:
    """pynvml's surface as read_nvml uses it, answering with the recorded values (NotSupported -> raises)."""

    NVML_CLOCK_SM = 1

    class _Obj:
        def __init__(self, **kw: object) -> None:
            self.__dict__.update(kw)

    def nvmlDeviceGetCount(self) -> int:
        return 1

    def nvmlDeviceGetHandleByIndex(self, i: int) -> int:
        return i

    def nvmlDeviceGetName(self, h: int) -> bytes:
        return b"NVIDIA H100 80GB HBM3"

    def nvmlDeviceGetUtilizationRates(self, h: int) -> object:
        return self._Obj(gpu=97, memory=41)

    def nvmlDeviceGetMemoryInfo(self, h: int) -> object:
        return self._Obj(used=9_521_070_080, total=85_520_809_984)

    def nvmlDeviceGetComputeRunningProcesses(self, h: int) -> list[object]:
        return [self._Obj(pid=4242, usedGpuMemory=8_589_934_592)]

    def nvmlDeviceGetProcessUtilization(self, h: int, last: int) -> list[object]:
        raise RuntimeError("NVML_ERROR_NOT_FOUND")  # no samples since `last`: per-process util unknown

    def nvmlDeviceGetPowerUsage(self, h: int) -> int:
        return 512_346

    def nvmlDeviceGetClockInfo(self, h: int, which: int) -> int:
        return 1980


def test_read_nvml_tolerates_unsupported_queries() -> None:
    r = read_nvml(FakeNvml())
    d = r["devices"][0]
    assert d["name"] == "NVIDIA H100 80GB HBM3" and d["power_mw"] == 512_346 and d["sm_clock_mhz"] == 1980
    assert d["processes"] == {4242: {"memory": 8_589_934_592, "sm_util_pct": None}}


def test_cupti_file_joins_launches_and_completions(tmp_path: Path) -> None:
    """CPU side from probe records (as the stand-in test produces them); device side from a recorded hook file."""
    out: list[Event] = []
    t = CudaTracker("gpu-host", 0, out.append, str(tmp_path), producer_id=9)
    name = Probe(0, "/lib/libcuda.so.1", "cuModuleGetFunction", 0x1000, 3, 3, 2, 0, role="name")
    launch = Probe(1, "/lib/libcuda.so.1", "cuLaunchKernel", 0x2000, 1, 4, role="launch")
    d2h = Probe(2, "/lib/libcuda.so.1", "cuMemcpyDtoH_v2", 0x3000, 2, role="copy:DTOH")
    nothing = [0] * 9
    assert t.handle(UpCall(50, 51, 0, 900, 10, 0, 0xF00D, tuple(nothing), "vecadd"), name, 1) == []
    k_api = t.handle(UpCall(50, 51, 1, 1_000_000, 6_000, 0, 0, (0xF00D, 4096, 1, 1, 256, 1, 1, 0, 0), ""), launch, 2)[0]
    c_api = t.handle(UpCall(50, 51, 2, 1_100_000, 2_000_000, 0, 0, (0, 0, 16 << 20, 0, 0, 0, 0, 0, 0), ""), d2h, 3)[0]
    assert isinstance(k_api, GpuKernel) and k_api.name == "vecadd" and k_api.grid == (4096, 1, 1)
    assert k_api.block == (256, 1, 1) and k_api.side == "api"
    assert isinstance(c_api, GpuMemoryTransfer) and c_api.kind is MemcpyKind.DTOH and c_api.bytes == 16 << 20
    # The hook's file for pid 50 (CUPTI clock = monotonic + 5_000_000 here): driver records carry the thread
    # and the correlation id; the kernel ran on the device from 1.01 ms to 1.2 ms monotonic.
    lines = [{"anchor": {"activity_ns": 5_000_000, "mono_ns": 0, "wall_minus_mono": 10**18}, "pid": 50},
             {"kind": "driver", "cbid": 307, "start": 5_999_000, "end": 6_010_000, "threadId": 51, "correlationId": 77},
             {"kind": "kernel", "name": "vecadd", "start": 6_010_000, "end": 6_200_000, "deviceId": 0, "streamId": 7,
              "gridX": 4096, "blockX": 256, "correlationId": 77},
             {"kind": "memcpy", "copyKind": 2, "bytes": 16 << 20, "start": 6_300_000, "end": 8_000_000,
              "deviceId": 0, "streamId": 7, "correlationId": 78}]
    (tmp_path / "cupti-50.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    events = t.finish()
    dev_k = next(e for e in events if isinstance(e, GpuKernel))
    assert dev_k.side == "device" and dev_k.h.mono_ns == 1_010_000 and dev_k.h.duration_ns == 190_000
    edges = [e for e in events if isinstance(e, CausalEdge)]
    assert (edges[0].src, edges[0].dst, edges[0].kind) == (k_api.h.event_id, dev_k.h.event_id, EdgeKind.GPU_LAUNCH)
    assert (edges[1].src, edges[1].dst, edges[1].kind) == (dev_k.h.event_id, c_api.h.event_id, EdgeKind.GPU_COMPLETION)
    # one timeline: assembled with the process, exported with GPU tracks and the launch on its thread
    root = ProcessEvent(EventHeader(b"\0" * 15 + b"\1", "gpu-host", 50, 50, 1, 10**18 + 1), ProcessEventType.EXEC,
                        argv=("python3", "gemm.py"))
    sample = samples_from_reading(READING, {50}, "gpu-host", 10**18, 9, 1 << 50)
    trace = assemble([root, k_api, c_api, *events, *sample], b"\1" * 16)
    doc = to_chrome_trace(trace)["traceEvents"]
    assert any(e.get("name") == "launch vecadd" and e["tid"] == 51 for e in doc)
    assert any(e.get("name") == "vecadd" and e["tid"] >= 1_000_000_000 for e in doc)
    assert any(e.get("ph") == "C" and e["name"] == "GPU 0 util %" for e in doc)
    # the device copy (no driver record joined it) still completes before the synchronous DtoH call returns
    assert edges[2].kind is EdgeKind.GPU_COMPLETION and edges[2].dst == c_api.h.event_id and len(edges) == 3
    assert sum(1 for e in doc if e.get("ph") == "s") == 3  # every edge drawn as a flow


def test_cupti_file_without_anchor_is_ignored() -> None:
    assert join_cupti([{"kind": "kernel"}], [], "h", 1) == []


def test_gpu_samples_become_span_events_on_the_process_span() -> None:
    from sysweave.validator.export.otlp import to_readable_spans

    root = ProcessEvent(EventHeader(b"\0" * 15 + b"\2", "gpu-host", 4242, 4242, 1, 10**18), ProcessEventType.EXEC,
                        argv=("python3", "gemm.py"))
    samples = samples_from_reading(READING, {4242}, "gpu-host", 10**18, 9, 0)
    spans = to_readable_spans(assemble([root, *samples], b"\3" * 16))
    proc = next(s for s in spans if s.parent is None)
    evs = [e for e in proc.events if e.name == "gpu.sample"]
    assert len(evs) == 3 and evs[0].attributes["gpu.power.mw"] == 512_346
    assert "gpu.power.mw" not in evs[2].attributes  # device 1 did not report power
    assert all(isinstance(s, GpuSample) for s in samples)
