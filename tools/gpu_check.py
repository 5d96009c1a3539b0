"""Device check for a machine with an NVIDIA GPU (run by hand or through the device tool):

    PYTHONPATH=schemas:agents:streams:validator:<deps> python3 tools/gpu_check.py [OUT_DIR]

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
import time

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


def main(out_dir: str) -> int:
    from sysweave.agents.gpu import ActivityClock, kernel_event, memcpy_event, nvml_devices
    from sysweave.schemas import codec
    from sysweave.streams.pipeline.assembly import assemble
    from sysweave.validator.export.perfetto import to_chrome_trace

    devices = nvml_devices()
    for d in devices:
        print(f"ok   nvml: GPU {d['index']} {d['name']} {d['memory_total'] >> 20} MiB, util {d['gpu_util_pct']}%, "
              f"driver {d['driver']}")
    cu = ctypes.CDLL("libcuda.so.1")
    check(cu, cu.cuInit(0), "cuInit")
    dev, ctx, mod, fn = ctypes.c_int(), ctypes.c_void_p(), ctypes.c_void_p(), ctypes.c_void_p()
    check(cu, cu.cuDeviceGet(ctypes.byref(dev), 0), "cuDeviceGet")
    check(cu, cu.cuCtxCreate_v2(ctypes.byref(ctx), 0, dev), "cuCtxCreate")
    check(cu, cu.cuModuleLoadData(ctypes.byref(mod), PTX), "cuModuleLoadData (PTX JIT)")
    check(cu, cu.cuModuleGetFunction(ctypes.byref(fn), mod, b"vecadd"), "cuModuleGetFunction")
    n = 1 << 22
    nbytes = n * 4
    host_a = (ctypes.c_float * n)()
    for i in range(0, n, 4096):
        host_a[i] = 1.5
    host_c = (ctypes.c_float * n)()
    da, db, dc = ctypes.c_uint64(), ctypes.c_uint64(), ctypes.c_uint64()
    for p in (da, db, dc):
        check(cu, cu.cuMemAlloc_v2(ctypes.byref(p), ctypes.c_size_t(nbytes)), "cuMemAlloc")
    ev = [ctypes.c_void_p() for _ in range(6)]
    for e in ev:
        check(cu, cu.cuEventCreate(ctypes.byref(e), 0), "cuEventCreate")
    clock = ActivityClock.anchored(time.clock_gettime_ns(time.CLOCK_MONOTONIC))
    t0 = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
    check(cu, cu.cuEventRecord(ev[0], None), "cuEventRecord")
    check(cu, cu.cuMemcpyHtoD_v2(da, host_a, ctypes.c_size_t(nbytes)), "cuMemcpyHtoD")
    check(cu, cu.cuMemcpyHtoD_v2(db, host_a, ctypes.c_size_t(nbytes)), "cuMemcpyHtoD")
    check(cu, cu.cuEventRecord(ev[1], None), "cuEventRecord")
    nn = ctypes.c_uint32(n)
    params = (ctypes.c_void_p * 4)(*[ctypes.cast(ctypes.byref(x), ctypes.c_void_p) for x in (da, db, dc, nn)])
    check(cu, cu.cuLaunchKernel(fn, n // 256, 1, 1, 256, 1, 1, 0, None, params, None), "cuLaunchKernel")
    check(cu, cu.cuEventRecord(ev[2], None), "cuEventRecord")
    check(cu, cu.cuMemcpyDtoH_v2(host_c, dc, ctypes.c_size_t(nbytes)), "cuMemcpyDtoH")
    check(cu, cu.cuEventRecord(ev[3], None), "cuEventRecord")
    check(cu, cu.cuCtxSynchronize(), "cuCtxSynchronize")
    assert host_c[0] == 3.0 and host_c[1] == 0.0, (host_c[0], host_c[1])
    print("ok   kernel: vecadd over 4M floats computed the right sums")

    def elapsed_ns(a: ctypes.c_void_p, b: ctypes.c_void_p) -> int:
        ms = ctypes.c_float()
        check(cu, cu.cuEventElapsedTime(ctypes.byref(ms), a, b), "cuEventElapsedTime")
        return int(ms.value * 1e6)

    h2d, kern, d2h = elapsed_ns(ev[0], ev[1]), elapsed_ns(ev[1], ev[2]), elapsed_ns(ev[2], ev[3])
    pid, host = os.getpid(), os.uname().nodename
    recs = [("copy", {"copyKind": 1, "bytes": 2 * nbytes, "start": t0, "end": t0 + h2d}),
            ("kernel", {"name": "vecadd", "start": t0 + h2d, "end": t0 + h2d + kern, "gridX": n // 256, "blockX": 256}),
            ("copy", {"copyKind": 2, "bytes": nbytes, "start": t0 + h2d + kern, "end": t0 + h2d + kern + d2h})]
    events = [(kernel_event if k == "kernel" else memcpy_event)(r, clock, host, pid, 7, i + 1)  # type: ignore[operator]
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
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "."))
