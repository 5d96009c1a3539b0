"""Device check for a machine with an NVIDIA GPU (tools/device_check.sh runs all three modes):

    PYTHONPATH=schemas:agents:streams:validator:<deps> python3 tools/gpu_check.py [OUT_DIR]
    python3 tools/gpu_check.py --workload SECONDS OUT.json      # the workload traced by sysweave trace --gpu
    python3 tools/gpu_check.py --verify TRACE.jsonl OUT.json     # checks that trace against the workload

1. NVML: list devices (sysweave.agents.gpu.nvml_devices).
2. A real kernel launch and two copies through the CUDA driver API (ctypes on libcuda; PTX JIT, no CUDA
   toolkit needed), timed with CUDA events, turned into GpuKernel/GpuMemoryTransfer events by the same
   converters the agent uses, round-tripped through the wire codec, assembled, and written as Perfetto JSON.
Prints one line per step and exits non-zero on the first failure.
"""

from __future__ import annotations

import ctypes
import json
import os
import sys
import threading
import time
from typing import Any

__all__ = ["Checks", "Driver", "check", "check_driver_ioctls", "check_driver_spans", "check_nvml_samples", "main",
           "read_trace", "timed_vecadd", "verify", "workload"]

PTX = b"""
.version 6.0
.target sm_50
.address_size 64
.visible .entry vecadd(.param .u64 a, .param .u64 b, .param .u64 c, .param .u32 n) {
  .reg .pred p; .reg .b32 r<6>; .reg .f32 f<4>; .reg .b64 d<10>;
  ld.param.u64 d1, [a]; ld.param.u64 d2, [b]; ld.param.u64 d3, [c]; ld.param.u32 r1, [n];
  mov.u32 r2, %ctaid.x; mov.u32 r3, %ntid.x; mov.u32 r4, %tid.x; mad.lo.s32 r5, r2, r3, r4;
  setp.ge.s32 p, r5, r1; @p bra DONE;
  cvta.to.global.u64 d4, d1; cvta.to.global.u64 d5, d2; cvta.to.global.u64 d6, d3;
  mul.wide.s32 d7, r5, 4; add.s64 d8, d4, d7; add.s64 d9, d5, d7;
  ld.global.f32 f1, [d8]; ld.global.f32 f2, [d9]; add.f32 f3, f1, f2;
  add.s64 d8, d6, d7; st.global.f32 [d8], f3;
DONE: ret;
}
"""


def check(cu: ctypes.CDLL, rc: int, what: str) -> None:
    if rc != 0:
        raise SystemExit(f"FAIL {what}: CUDA error {rc}")


class Driver:
    """The driver-API workload: one context, the vecadd module, three device buffers of ``n`` floats."""

    def __init__(self, n: int) -> None:
        self.cu = cu = ctypes.CDLL("libcuda.so.1")
        check(cu, cu.cuInit(0), "cuInit")
        self.dev, self.ctx, self.mod, self.fn = ctypes.c_int(), ctypes.c_void_p(), ctypes.c_void_p(), ctypes.c_void_p()
        check(cu, cu.cuDeviceGet(ctypes.byref(self.dev), 0), "cuDeviceGet")
        check(cu, cu.cuCtxCreate_v2(ctypes.byref(self.ctx), 0, self.dev), "cuCtxCreate")
        check(cu, cu.cuModuleLoadData(ctypes.byref(self.mod), PTX), "cuModuleLoadData (PTX JIT)")
        check(cu, cu.cuModuleGetFunction(ctypes.byref(self.fn), self.mod, b"vecadd"), "cuModuleGetFunction")
        self.n, self.nbytes = n, n * 4
        self.d = [ctypes.c_uint64() for _ in range(3)]
        for p in self.d:
            check(cu, cu.cuMemAlloc_v2(ctypes.byref(p), ctypes.c_size_t(self.nbytes)), "cuMemAlloc")
        self.nn = ctypes.c_uint32(n)
        self.params = (ctypes.c_void_p * 4)(*[ctypes.cast(ctypes.byref(x), ctypes.c_void_p) for x in (*self.d, self.nn)])

    def launch(self) -> None:
        check(self.cu, self.cu.cuLaunchKernel(self.fn, self.n // 256, 1, 1, 256, 1, 1, 0, None, self.params, None),
              "cuLaunchKernel")


def workload(seconds: float, out_json: str) -> int:
    """HtoD x2, vecadd launched for ``seconds`` (synchronised every 50), DtoH x1; writes what it did."""
    n = 1 << 26  # 256 MiB per buffer: each copy takes milliseconds on any PCIe/NVLink generation
    drv = Driver(n)
    cu = drv.cu
    host_a = (ctypes.c_float * n)()
    host_a[0] = 1.5
    host_c = (ctypes.c_float * n)()
    t_start = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
    for dst in drv.d[:2]:
        check(cu, cu.cuMemcpyHtoD_v2(dst, host_a, ctypes.c_size_t(drv.nbytes)), "cuMemcpyHtoD")
    launches, end = 0, time.monotonic() + seconds
    while time.monotonic() < end:
        drv.launch()
        launches += 1
        if launches % 50 == 0:
            check(cu, cu.cuCtxSynchronize(), "cuCtxSynchronize")
    check(cu, cu.cuMemcpyDtoH_v2(host_c, drv.d[2], ctypes.c_size_t(drv.nbytes)), "cuMemcpyDtoH")
    assert host_c[0] == 3.0 and host_c[1] == 0.0, (host_c[0], host_c[1])
    doc = {"pid": os.getpid(), "tid": threading.get_native_id(), "launches": launches, "bytes": drv.nbytes,
           "grid": [n // 256, 1, 1], "block": [256, 1, 1], "htod": 2, "dtoh": 1, "start_mono_ns": t_start,
           "end_mono_ns": time.clock_gettime_ns(time.CLOCK_MONOTONIC)}
    with open(out_json, "w") as f:
        json.dump(doc, f)
    print(f"ok   workload: {launches} launches of vecadd over {n} floats, 2 HtoD + 1 DtoH of {drv.nbytes >> 20} MiB, "
          f"result checked")
    return 0


class Checks:
    """Prints one line per check (ok/FAIL) and keeps the failed ones."""

    def __init__(self) -> None:
        self.fails: list[str] = []

    def __call__(self, cond: bool, what: str) -> None:
        print(("ok   " if cond else "FAIL ") + what)
        if not cond:
            self.fails.append(what)


def read_trace(trace_jsonl: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """A ``--format jsonl`` trace's lines: (events with an ``event`` kind, syscalls)."""
    events: list[dict[str, Any]] = []
    syscalls: list[dict[str, Any]] = []
    with open(trace_jsonl, encoding="utf-8", errors="replace") as f:
        for line in f:
            if line.startswith("{"):
                doc = json.loads(line)
                (events if "event" in doc else syscalls).append(doc)
    return events, syscalls


def verify(trace_jsonl: str, workload_json: str) -> int:
    """What `sysweave trace --gpu --gpu-kernel-us 0 --gpu-copy-us 0 --no-sampling --format jsonl` must show."""
    with open(workload_json) as f:
        w = json.load(f)
    events, syscalls = read_trace(trace_jsonl)
    ok = Checks()
    mine = [e for e in events if e["pid"] == w["pid"]]
    spans = check_driver_spans(w, mine, ok)
    check_nvml_samples(w, events, ok)
    check_driver_ioctls(w, syscalls, spans, ok)
    dev = [e for e in mine if e["side"] == "device"] if any("side" in e for e in mine) else []
    if dev:
        ok(len([d for d in dev if d["event"] == "GpuKernel"]) == w["launches"],
           f"CUPTI: {len(dev)} device-side events, one kernel per launch")
    else:
        print("skip CUPTI device-side times: no device-side events (cupti-python not installed in the traced Python)")
    fails = ok.fails
    print(f"{'FAIL' if fails else 'PASS'}: {len(fails)} of the checks above failed" if fails else "PASS: every check above")
    return 1 if fails else 0


def check_driver_spans(w: dict[str, Any], mine: list[dict[str, Any]], ok: Checks) -> list[dict[str, Any]]:
    """The workload's CPU-side launch and copy spans against what it did; returns them in wall-clock order."""
    api_k = [e for e in mine if e["event"] == "GpuKernel" and e["side"] == "api"]
    ok(len(api_k) == w["launches"], f"launch spans: {len(api_k)} cuLaunchKernel spans for {w['launches']} launches")
    ok(all(k["name"] == "vecadd" and k["grid"] == w["grid"] and k["block"] == w["block"] for k in api_k),
       "every launch span is named vecadd (cuModuleGetFunction bookkeeping) with grid/block as launched")
    api_c = [e for e in mine if e["event"] == "GpuMemoryTransfer" and e["side"] == "api"]
    dirs = [(c["kind"], c["bytes"]) for c in api_c]
    ok(dirs == [("HTOD", w["bytes"])] * w["htod"] + [("DTOH", w["bytes"])] * w["dtoh"],
       f"copy spans in program order with direction and bytes: {dirs}")
    spans = sorted(api_k + api_c, key=lambda e: e["wall_ns"])
    ok(bool(spans) and spans[0]["event"] == "GpuMemoryTransfer" and spans[-1]["event"] == "GpuMemoryTransfer",
       "order: the HtoD copies come before the launches, the DtoH after them")
    return spans


def check_nvml_samples(w: dict[str, Any], events: list[dict[str, Any]], ok: Checks) -> None:
    """NVML's GpuSample events: enough of them, utilisation seen, and (outside a container) the workload's pid."""
    samples = [e for e in events if e["event"] == "GpuSample"]
    ok(len(samples) >= 3, f"NVML: {len(samples)} GpuSample events (device and per process)")
    util = [s["gpu_util_pct"] for s in samples if s["gpu_util_pct"] is not None]
    ok(bool(util) and max(util) > 0, f"NVML: GPU utilisation seen while vecadd ran (max {max(util, default=0)}%)")
    if any(s["process_pid"] == w["pid"] for s in samples):
        print("ok   NVML: a per-process sample for the traced workload pid")
    else:  # inside a container NVML lists host pids (or none): not a failure of sysweave
        print(f"warn NVML: no per-process sample for pid {w['pid']} (NVML saw pids "
              f"{sorted({s['process_pid'] for s in samples if s['process_pid']})}; in a container NVML reports host pids)")


def check_driver_ioctls(w: dict[str, Any], syscalls: list[dict[str, Any]], spans: list[dict[str, Any]],
                        ok: Checks) -> None:
    """The driver's ioctls, on fds the workload opened on /dev/nvidia* (nvidiactl, nvidia0, nvidia-uvm): the
    first precede the first GPU span, and each nests inside a driver-call span on its thread or outside all."""
    dev_fds = {s["ret"] for s in syscalls if s["pid"] == w["pid"] and s["syscall"] in ("open", "openat")
               and str(s["args"].get("path", "")).startswith("/dev/nvidia") and s["ret"] >= 0}
    ioctls = sorted((s for s in syscalls if s["pid"] == w["pid"] and s["syscall"] == "ioctl"
                     and s["args"].get("fd") in dev_fds), key=lambda s: s["wall_ns"])
    ok(bool(ioctls) and bool(spans) and ioctls[0]["wall_ns"] < spans[0]["wall_ns"],
       f"ioctl: {len(ioctls)} ioctls on /dev/nvidia* fds {sorted(dev_fds)}; driver initialisation's precede the first "
       f"GPU span")
    tol = 50_000  # the two decoders anchor wall time separately (a few µs apart): 50 µs of slack
    crossing, inside = [], 0
    for s in spans:
        s0, s1 = s["wall_ns"], s["wall_ns"] + s["duration_ns"]
        for i in ioctls:
            if i["tid"] != s["tid"]:
                continue
            i0, i1 = i["wall_ns"], i["wall_ns"] + i["duration_ns"]
            if i0 >= s0 - tol and i1 <= s1 + tol:
                inside += 1
            elif i0 < s1 and i1 > s0:
                crossing.append((s["event"], i0, i1))
    ok(not crossing, f"ioctl: {inside} ioctls nest inside driver-call spans on their thread, none straddles a span "
                     f"boundary ({len(crossing)} do)")


def timed_vecadd(drv: Driver) -> tuple[int, int, int, int]:
    """2 HtoD copies, one vecadd, 1 DtoH, timed by CUDA events; checks the sums. Returns (start on
    CLOCK_MONOTONIC, HtoD, kernel, DtoH), all ns."""
    cu = drv.cu
    host_a = (ctypes.c_float * drv.n)()
    for i in range(0, drv.n, 4096):
        host_a[i] = 1.5
    host_c = (ctypes.c_float * drv.n)()
    ev = [ctypes.c_void_p() for _ in range(6)]
    for e in ev:
        check(cu, cu.cuEventCreate(ctypes.byref(e), 0), "cuEventCreate")
    t0 = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
    check(cu, cu.cuEventRecord(ev[0], None), "cuEventRecord")
    for dst in drv.d[:2]:
        check(cu, cu.cuMemcpyHtoD_v2(dst, host_a, ctypes.c_size_t(drv.nbytes)), "cuMemcpyHtoD")
    check(cu, cu.cuEventRecord(ev[1], None), "cuEventRecord")
    drv.launch()
    check(cu, cu.cuEventRecord(ev[2], None), "cuEventRecord")
    check(cu, cu.cuMemcpyDtoH_v2(host_c, drv.d[2], ctypes.c_size_t(drv.nbytes)), "cuMemcpyDtoH")
    check(cu, cu.cuEventRecord(ev[3], None), "cuEventRecord")
    check(cu, cu.cuCtxSynchronize(), "cuCtxSynchronize")
    assert host_c[0] == 3.0 and host_c[1] == 0.0, (host_c[0], host_c[1])
    print("ok   kernel: vecadd over 4M floats computed the right sums")

    def elapsed_ns(a: ctypes.c_void_p, b: ctypes.c_void_p) -> int:
        ms = ctypes.c_float()
        check(cu, cu.cuEventElapsedTime(ctypes.byref(ms), a, b), "cuEventElapsedTime")
        return int(ms.value * 1e6)

    return t0, elapsed_ns(ev[0], ev[1]), elapsed_ns(ev[1], ev[2]), elapsed_ns(ev[2], ev[3])


def main(out_dir: str) -> int:
    from sysweave.agents.gpu import ActivityClock, kernel_event, memcpy_event, nvml_devices
    from sysweave.schemas import codec
    from sysweave.streams.pipeline.assembly import assemble
    from sysweave.validator.export.perfetto import to_chrome_trace

    devices = nvml_devices()
    for d in devices:
        print(f"ok   nvml: GPU {d['index']} {d['name']} {d['memory_total'] >> 20} MiB, util {d['gpu_util_pct']}%, "
              f"driver {d['driver']}")
    drv = Driver(1 << 22)
    n, nbytes = drv.n, drv.nbytes
    clock = ActivityClock.anchored(time.clock_gettime_ns(time.CLOCK_MONOTONIC))
    t0, h2d, kern, d2h = timed_vecadd(drv)
    pid, host = os.getpid(), os.uname().nodename
    recs: list[tuple[str, dict[str, Any]]] = [("copy", {"copyKind": 1, "bytes": 2 * nbytes, "start": t0, "end": t0 + h2d}),
            ("kernel", {"name": "vecadd", "start": t0 + h2d, "end": t0 + h2d + kern, "gridX": n // 256, "blockX": 256}),
            ("copy", {"copyKind": 2, "bytes": nbytes, "start": t0 + h2d + kern, "end": t0 + h2d + kern + d2h})]
    events = [kernel_event(r, clock, host, pid, 7, i + 1) if k == "kernel" else memcpy_event(r, clock, host, pid, 7, i + 1)
              for i, (k, r) in enumerate(recs)]
    batch = codec.decode_batch(codec.encode_batch(codec.Batch(7, 1, time.time_ns(), tuple(events))))
    trace = assemble(batch.events, os.urandom(16))
    print(f"ok   events: HtoD {h2d / 1e3:.0f} us ({2 * nbytes / max(h2d, 1):.1f} GB/s), kernel {kern / 1e3:.0f} us, "
          f"DtoH {d2h / 1e3:.0f} us; codec round trip and assembly of {len(batch.events)} GPU events")
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, "gpu_check.perfetto.json")
    with open(path, "w") as f:
        json.dump(to_chrome_trace(trace), f)
    with open(os.path.join(out_dir, "gpu_check.json"), "w") as f:
        json.dump({"devices": devices, "h2d_ns": h2d, "kernel_ns": kern, "d2h_ns": d2h}, f, default=str)
    print(f"ok   wrote {path}")
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["--workload"]:
        sys.exit(workload(float(sys.argv[2]), sys.argv[3]))
    if sys.argv[1:2] == ["--verify"]:
        sys.exit(verify(sys.argv[2], sys.argv[3]))
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "."))
