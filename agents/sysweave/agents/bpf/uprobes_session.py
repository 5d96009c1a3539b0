"""The layers beside syscall capture, started and stopped as one: function probes (``--uprobe``), CUDA
driver probes and NVML sampling (``--gpu``), and the CUPTI hook's environment for a traced Python.

``sysweave trace`` and the agent daemon build a :class:`LayerOptions` from their flags and call
:func:`start_layers` after the syscall capture exists and before the command starts; :meth:`Layers.snapshot`
gives each window's exact function aggregates; :meth:`Layers.finish` stops everything and returns the last
window plus the device-side CUPTI events. Without a GPU or driver, ``--gpu`` reports one line and tracing
goes on; a ``--uprobe`` that names nothing is a TargetError (tracing does not start).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sysweave.agents.bpf.syscalls import SyscallProbe, TargetError
from sysweave.agents.bpf.uprobes import (
    CLASS_COMPUTE,
    CLASS_GPU_KERNEL,
    CLASS_MEMCPY,
    Handler,
    UprobeSession,
    executable_of,
    resolve_probes,
    resolve_usdt,
)
from sysweave.agents.bpf.uprobes_spec import Probe, SpecError, parse_spec, parse_usdt
from sysweave.schemas.errors import AgentError
from sysweave.schemas.events import Event

if TYPE_CHECKING:  # imported where a layer starts: pynvml and the CUDA probes only when asked for
    from sysweave.agents.cuda_probes import CudaTracker
    from sysweave.agents.gpu_sampler import NvmlSampler

__all__ = ["LayerOptions", "Layers", "start_layers"]


@dataclass(frozen=True, slots=True)
class LayerOptions:
    uprobes: tuple[str, ...] = ()
    compute_ns: int = 50_000
    gpu: bool = False
    gpu_interval_s: float = 0.1
    cuda_lib: str | None = None  # default: libcuda.so.1 as the linker cache resolves it
    cupti_dir: str | None = None  # where the CUPTI hook writes its records (default: a temporary directory)
    kernel_ns: int = 100_000  # the seed's kernel threshold (CPU-side launch calls)
    memcpy_ns: int = 1_000_000  # the seed's transfer threshold (copy calls)
    usdt: tuple[str, ...] = ()  # --usdt [LIB:]PROVIDER:NAME (hits counted exactly; libbpf path only)

    @property
    def active(self) -> bool:
        return bool(self.uprobes) or bool(self.usdt) or self.gpu


@dataclass
class Layers:
    options: LayerOptions
    session: UprobeSession | None = None
    sampler: NvmlSampler | None = None
    cuda: CudaTracker | None = None
    env: dict[str, str] = field(default_factory=dict)  # for the traced command (the CUPTI hook)
    sink: Callable[[Event], None] | None = None

    def child_env(self, base: dict[str, str] | None = None) -> dict[str, str] | None:
        """The traced command's environment (None: inherit ours unchanged)."""
        if not self.env:
            return base
        env = dict(os.environ if base is None else base)
        for k, v in self.env.items():
            env[k] = f"{v}{os.pathsep}{env[k]}" if k == "PYTHONPATH" and env.get(k) else v
        return env

    def set_threshold(self, cls: int, ns: int) -> None:
        if self.session:
            self.session.program.set_threshold(cls, ns)

    def snapshot(self, root_pid: int) -> list[Event]:
        return self.session.snapshot(root_pid) if self.session else []

    def finish(self, root_pid: int, pids: set[int] | None = None) -> list[Event]:
        """Stop every layer; returns the last window's aggregates and losses (CUPTI's device-side events and
        edges go to the sink, as every other event)."""
        out: list[Event] = []
        if self.sampler is not None:
            self.sampler.stop()
        if self.session:
            self.session.stop()
            out.extend(self.session.snapshot(root_pid))
            self.session.close()
        if self.cuda is not None and self.sink is not None:  # device side (CUPTI): into the trace like the rest
            for e in self.cuda.finish(pids):
                self.sink(e)
        return out


def start_layers(options: LayerOptions, syscalls: SyscallProbe, sink: Callable[[Event], None], host_id: str,
                 wall_offset_ns: int, command: list[str], pids: list[int], traced: set[int] | None = None,
                 warn: Callable[[str], None] = lambda m: print(f"sysweave: {m}", file=sys.stderr)) -> Layers:
    """Resolve and attach what ``options`` asks for. Raises TargetError for a probe that names nothing."""
    layers = Layers(options, sink=sink)
    if not options.active:
        return layers
    probes = _function_probes(options, command, pids)
    handlers: dict[str, Handler] = {}
    gpu_off: list[str] = []  # why parts of the GPU layer are off (one line at the end)
    if options.gpu:
        _attach_cuda_driver(layers, probes, handlers, sink, host_id, wall_offset_ns, gpu_off)
    if probes:
        layers.session = _start_uprobe_session(layers, probes, syscalls, handlers, sink, host_id, wall_offset_ns)
    if options.gpu:
        _start_nvml_sampler(layers, sink, host_id, wall_offset_ns, pids, traced, gpu_off)
        _warn_gpu_off(layers, gpu_off, warn)
    return layers


def _function_probes(options: LayerOptions, command: list[str], pids: list[int]) -> list[Probe]:
    """The ``--uprobe`` and ``--usdt`` probes, resolved in the traced executable (ids from 0)."""
    probes: list[Probe] = []
    exe = executable_of(command, pids) if options.uprobes or options.usdt else None
    try:
        specs = [parse_spec(s) for s in options.uprobes]
        usdt = [parse_usdt(s) for s in options.usdt]
    except SpecError as exc:
        raise TargetError(str(exc)) from exc
    if specs:
        probes = resolve_probes(specs, exe, 0, CLASS_COMPUTE)
    probes += resolve_usdt(usdt, exe, len(probes))
    return probes


def _attach_cuda_driver(layers: Layers, probes: list[Probe], handlers: dict[str, Handler],
                        sink: Callable[[Event], None], host_id: str, wall_offset_ns: int,
                        gpu_off: list[str]) -> None:
    """Add the CUDA driver API probes and their handlers (and the CUPTI hook's environment); without a
    driver, append why to ``gpu_off``."""
    from sysweave.agents.cuda_probes import CudaTracker, cuda_probes, find_libcuda

    options = layers.options
    try:
        lib = find_libcuda(options.cuda_lib)
    except AgentError as exc:
        gpu_off.append(str(exc))
        return
    cuda = CudaTracker(host_id, wall_offset_ns, sink, options.cupti_dir)
    probes.extend(cuda_probes(lib, len(probes)))
    handlers.update(cuda.handlers())
    layers.cuda = cuda
    layers.env.update(cuda.child_env())


def _start_uprobe_session(layers: Layers, probes: list[Probe], syscalls: SyscallProbe,
                          handlers: dict[str, Handler], sink: Callable[[Event], None], host_id: str,
                          wall_offset_ns: int) -> UprobeSession:
    """Attach every probe with the options' thresholds (ns) and start reading."""
    options = layers.options
    session = UprobeSession(probes, syscalls, sink, host_id, wall_offset_ns, handlers)
    session.program.set_threshold(CLASS_COMPUTE, options.compute_ns)
    session.program.set_threshold(CLASS_GPU_KERNEL, options.kernel_ns)
    session.program.set_threshold(CLASS_MEMCPY, options.memcpy_ns)
    if layers.cuda is not None:
        layers.cuda.producer_id = session.producer_id
    session.start()
    return session


def _start_nvml_sampler(layers: Layers, sink: Callable[[Event], None], host_id: str, wall_offset_ns: int, pids: list[int],
                        traced: set[int] | None, gpu_off: list[str]) -> None:
    """Start NVML sampling of the traced pids; without NVML, append why to ``gpu_off``."""
    from sysweave.agents.gpu import GpuUnavailable
    from sysweave.agents.gpu_sampler import NvmlSampler

    try:
        sampler = NvmlSampler(layers.options.gpu_interval_s, host_id, wall_offset_ns, sink)
    except GpuUnavailable as exc:
        gpu_off.append(str(exc))
        return
    if traced is not None:
        sampler.pids = traced  # the live set of traced pids (read at each sample)
    elif layers.cuda is not None:
        sampler.pids = layers.cuda.pids
    sampler.start(pids[0] if pids else 0)
    layers.sampler = sampler


def _warn_gpu_off(layers: Layers, gpu_off: list[str], warn: Callable[[str], None]) -> None:
    """One line saying which part of the GPU layer is off and why (none when all of it is on)."""
    if len(gpu_off) == 2:
        warn(f"GPU layer off: {gpu_off[0]}; {gpu_off[1]}. Tracing goes on without it")
    elif gpu_off:
        on = "NVML samples" if layers.sampler is not None else "CUDA driver API probes"
        warn(f"GPU layer partly off: {gpu_off[0]}; {on} only")
