"""Kernels and copies without code changes: function probes (uprobes.bpf.c) on the CUDA driver API in libcuda.

CPU side (any language, any program that uses the driver, cudart included):

* ``cuLaunchKernel``/``_ptsz`` -> a ``GpuKernel`` launch span (``side`` "api") with grid and block (the 7th
  argument, blockDimZ, is read from the stack) and the kernel's name;
* ``cuMemcpy{HtoD,DtoH,DtoD}[Async]_v2`` (+ ``_ptds``/``_ptsz``, the pre-v2 names, ``cuMemcpy[Async]``) ->
  ``GpuMemoryTransfer`` with bytes and direction (``DEFAULT`` where the driver infers it from unified addresses);
* kernel names: the function handle -> name map is kept from ``cuModuleGetFunction``/``cuLibraryGetKernel``
  (every call ships: the name string and the handle written to the out-parameter at return) and
  ``cuKernelGetFunction`` (CUfunction -> CUkernel). ``cuFuncGetName`` would need a call into the traced process,
  which probes cannot make; a handle created before tracing began is shown as ``CUfunction 0x...``.

The seed's thresholds apply to the API call's own duration (kernels 100 µs, copies 1 ms, the controller's
``thresholds`` map); exact per-function counts come from the aggregates either way. Device side: the CUPTI
hook (cupti_hook.py, installed by ``--gpu`` into a traced Python through PYTHONPATH) writes activity records
that :func:`join_cupti` turns into device-side events with GPU_LAUNCH / GPU_COMPLETION edges.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sysweave.agents.bpf.syscalls import TargetError
from sysweave.agents.bpf.uprobes import CLASS_ALWAYS, CLASS_GPU_KERNEL, CLASS_MEMCPY, functions_matching, resolve_library
from sysweave.agents.bpf.uprobes_spec import Probe, UpCall, up_contract
from sysweave.agents.gpu import ActivityClock, kernel_event, memcpy_event
from sysweave.schemas.errors import AgentError
from sysweave.schemas.events import (
    CausalEdge,
    CausalStamp,
    EdgeKind,
    Event,
    EventHeader,
    GpuKernel,
    GpuMemoryTransfer,
    MemcpyKind,
    make_event_id,
)

__all__ = ["CUDA_SYMBOLS", "CudaTracker", "cuda_probes", "find_libcuda", "join_cupti"]

_C = up_contract()
UPF_READ_STR, UPF_DEREF, UPF_STACK_ARGS = _C["UPF_READ_STR"], _C["UPF_DEREF"], _C["UPF_STACK_ARGS"]

# symbol -> (role, class, flags, str_arg, deref_arg); roles: launch, copy:<KIND>, name, kernel_fn
_COPIES = {"HtoD": "HTOD", "DtoH": "DTOH", "DtoD": "DTOD"}
CUDA_SYMBOLS: dict[str, tuple[str, int, int, int, int]] = {
    "cuLaunchKernel": ("launch", CLASS_GPU_KERNEL, UPF_STACK_ARGS, 0, 0),
    "cuLaunchKernel_ptsz": ("launch", CLASS_GPU_KERNEL, UPF_STACK_ARGS, 0, 0),
    "cuModuleGetFunction": ("name", CLASS_ALWAYS, UPF_READ_STR | UPF_DEREF, 2, 0),
    "cuLibraryGetKernel": ("name", CLASS_ALWAYS, UPF_READ_STR | UPF_DEREF, 2, 0),
    "cuKernelGetFunction": ("kernel_fn", CLASS_ALWAYS, UPF_DEREF, 0, 0),
    "cuMemcpy": ("copy:DEFAULT", CLASS_MEMCPY, 0, 0, 0),
    "cuMemcpyAsync": ("copy:DEFAULT", CLASS_MEMCPY, 0, 0, 0),
    "cuMemcpy_ptds": ("copy:DEFAULT", CLASS_MEMCPY, 0, 0, 0),
    "cuMemcpyAsync_ptsz": ("copy:DEFAULT", CLASS_MEMCPY, 0, 0, 0),
    **{f"cuMemcpy{d}{a}{v}{p}": (f"copy:{k}", CLASS_MEMCPY, 0, 0, 0)
       for d, k in _COPIES.items() for a in ("", "Async") for v in ("", "_v2")
       for p in ("", "_ptds" if not a else "_ptsz") if not (p and not v)},
}


def find_libcuda(path: str | None = None) -> str:
    """The libcuda to probe: ``path``, else libcuda.so.1 from the linker cache. Raises AgentError if none."""
    try:
        return resolve_library(path or "cuda", None)
    except TargetError as exc:
        if path:
            raise AgentError(f"--cuda-lib {path}: not found") from exc
        raise AgentError("no libcuda.so.1 in the linker cache (no NVIDIA driver here? --cuda-lib PATH names one)") \
            from exc


def cuda_probes(lib: str, first_id: int) -> list[Probe]:
    """Probes for every driver entry point of CUDA_SYMBOLS that ``lib`` exports (aliases once)."""
    found = {name: addr for name, addr in functions_matching(lib, "^cu(LaunchKernel|Memcpy|ModuleGetFunction|LibraryGetKernel"
                                                           "|KernelGetFunction)")}
    if "cuLaunchKernel" not in found:
        raise AgentError(f"{lib} exports no cuLaunchKernel: not a CUDA driver library")
    probes: list[Probe] = []
    seen: set[int] = set()
    for name in sorted(found):
        if name not in CUDA_SYMBOLS or found[name] in seen:
            continue
        seen.add(found[name])
        role, cls, flags, str_arg, deref_arg = CUDA_SYMBOLS[name]
        probes.append(Probe(first_id + len(probes), lib, name, found[name], cls, flags, str_arg, deref_arg, role=role))
    return probes


@dataclass
class CudaTracker:
    """Turns CUDA probe records into GPU events; keeps the handle -> kernel name map per process."""

    host_id: str
    wall_offset_ns: int
    sink: Callable[[Event], None]
    cupti_dir: str | None = None
    producer_id: int = 0

    def __post_init__(self) -> None:
        self.names: dict[tuple[int, int], str] = {}
        self.kernel_of_fn: dict[tuple[int, int], int] = {}
        self.pids: set[int] = set()
        self.api_events: list[GpuKernel | GpuMemoryTransfer] = []
        self._lock = threading.Lock()
        if self.cupti_dir is None:
            self.cupti_dir = tempfile.mkdtemp(prefix="sysweave-cupti-")

    def handlers(self) -> dict[str, Callable[[UpCall, Probe, int], list[Event]]]:
        roles = {"launch", "name", "kernel_fn", *(f"copy:{k}" for k in ("HTOD", "DTOH", "DTOD", "DEFAULT"))}
        return {r: self.handle for r in roles}

    def child_env(self) -> dict[str, str]:
        """PYTHONPATH to the hook directory (its sitecustomize loads cupti_hook.py) and where records go."""
        hook_dir = os.path.join(os.path.dirname(os.path.abspath(__file__)), "cupti_site")
        return {"PYTHONPATH": hook_dir, "SYSWEAVE_CUPTI_DIR": str(self.cupti_dir)}

    def _header(self, call: UpCall, seq: int) -> EventHeader:
        return EventHeader(make_event_id(self.producer_id, seq), self.host_id, call.pid, call.tid, call.ts,
                           call.ts + self.wall_offset_ns, call.dur, CausalStamp(seq, 0))

    def kernel_name(self, pid: int, handle: int) -> str:
        name = self.names.get((pid, handle))
        if name is None and (pid, handle) in self.kernel_of_fn:
            name = self.names.get((pid, self.kernel_of_fn[(pid, handle)]))
        return name or f"CUfunction {handle:#x}"

    def handle(self, call: UpCall, probe: Probe, seq: int) -> list[Event]:
        with self._lock:
            self.pids.add(call.pid)
            if probe.role == "name":
                if call.ret == 0 and call.deref:
                    self.names[(call.pid, call.deref)] = call.text
                return []
            if probe.role == "kernel_fn":
                if call.ret == 0 and call.deref:
                    self.kernel_of_fn[(call.pid, call.deref)] = call.args[1]
                return []
            ev: GpuKernel | GpuMemoryTransfer
            if probe.role == "launch":
                a = [v & 0xFFFFFFFF for v in call.args]  # unsigned int dims: the upper halves are undefined (ABI)
                ev = GpuKernel(self._header(call, seq), self.kernel_name(call.pid, call.args[0]), grid=(a[1], a[2], a[3]),
                               block=(a[4], a[5], a[6]), side="api")
            else:
                kind = MemcpyKind[probe.role.split(":", 1)[1]]
                ev = GpuMemoryTransfer(self._header(call, seq), kind, call.args[2], side="api")
            self.api_events.append(ev)
            return [ev]

    def finish(self, pids: set[int] | None = None) -> list[Event]:
        """Device-side events from the CUPTI hook's files (one per traced Python process), joined to launches."""
        out: list[Event] = []
        if not self.cupti_dir or not os.path.isdir(self.cupti_dir):
            return out
        for name in sorted(os.listdir(self.cupti_dir)):
            if name.startswith("cupti-") and name.endswith(".jsonl"):
                with open(os.path.join(self.cupti_dir, name)) as f:
                    lines = [json.loads(line) for line in f if line.strip()]
                out.extend(join_cupti(lines, self.api_events, self.host_id, self.producer_id))
        return out


def _edge(src: Event, dst: Event, kind: EdgeKind, detail: str, producer: int, seq: int) -> CausalEdge:
    h = EventHeader(make_event_id(producer, seq), dst.h.host_id, dst.h.pid, dst.h.tid, dst.h.mono_ns, dst.h.wall_ns)
    return CausalEdge(h, src.h.event_id, dst.h.event_id, kind, detail)


def join_cupti(lines: Iterable[Mapping[str, Any]], api: Iterable[GpuKernel | GpuMemoryTransfer], host_id: str,
               producer_id: int) -> list[Event]:
    """The hook's file -> device-side GpuKernel/GpuMemoryTransfer events (``side`` "device") and edges.

    File: a first line ``{"anchor": {"activity_ns", "mono_ns", "wall_minus_mono"}, "pid"}`` then one record a line:
    ``{"kind": "kernel"|"memcpy"|"driver", ...CUPTI fields}`` (converters in gpu.py). Driver-API records
    (cbid name, start, end, threadId, correlationId) find their CPU-side probe span: same thread, the probe
    span inside the API record's interval; the kernel's correlation id then links launch -> kernel
    (GPU_LAUNCH). GPU_COMPLETION: kernel/copy -> the first CPU-side synchronous copy on that process that
    returned after the device finished (a real wait: a synchronous copy drains the stream first)."""
    it = iter(lines)
    first = next(it, None)
    if not first or "anchor" not in first:
        return []
    a, pid = first["anchor"], int(first["pid"])
    clock = ActivityClock(int(a["activity_ns"]), int(a["mono_ns"]), int(a["wall_minus_mono"]))
    api_list = sorted((e for e in api if e.h.pid == pid), key=lambda e: e.h.mono_ns)
    by_corr: dict[int, GpuKernel | GpuMemoryTransfer] = {}
    out: list[Event] = []
    seq = 1 << 61  # disjoint from the probe records' sequence
    device: list[GpuKernel | GpuMemoryTransfer] = []
    for rec in it:
        kind = rec.get("kind")
        if kind == "driver":
            start, end = clock.mono(int(rec["start"])), clock.mono(int(rec["end"]))
            tid = int(rec.get("threadId", 0))
            for e in api_list:
                if e.h.tid == tid and start <= e.h.mono_ns <= end:
                    by_corr[int(rec["correlationId"])] = e
                    break
            continue
        seq += 1
        if kind == "kernel":
            device.append(kernel_event(rec, clock, host_id, pid, producer_id, seq))
        elif kind == "memcpy":
            device.append(memcpy_event(rec, clock, host_id, pid, producer_id, seq))
    syncs = [e for e in api_list if isinstance(e, GpuMemoryTransfer) and e.kind in (MemcpyKind.DTOH, MemcpyKind.HTOD)]
    for d in device:
        out.append(d)
        src = by_corr.get(d.correlation_id)
        if src is not None:
            seq += 1
            out.append(_edge(src, d, EdgeKind.GPU_LAUNCH, f"correlation {d.correlation_id}", producer_id, seq))
        done = d.h.mono_ns + d.h.duration_ns
        waiter = next((s for s in syncs if s.h.mono_ns + s.h.duration_ns >= done and s is not src
                       and s.h.mono_ns + s.h.duration_ns > d.h.mono_ns), None)
        if waiter is not None:
            seq += 1
            out.append(_edge(d, waiter, EdgeKind.GPU_COMPLETION, "synchronous copy returned after it", producer_id, seq))
    return out
