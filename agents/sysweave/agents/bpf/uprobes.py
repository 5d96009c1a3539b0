"""Loader for uprobes.bpf.c: resolve ``--uprobe`` specs to function addresses, compile with cflags, attach
entry/return pairs, move the class thresholds, drain the ring buffer, read the exact aggregates.

The program decides which processes count from the syscall program's own ``targets``/``settings`` maps:
:class:`UprobeProgram` pins them (bpffs, for the time of the load), the program opens them by path, and
the pins are removed at once (the maps live on while either program holds them).

Errors (under CaptureError, see syscalls.py)::

    TargetError     -- a library, symbol or regex that names nothing (the message names it)
    BpfUnavailable  -- the program failed to compile/load/attach
"""

from __future__ import annotations

import ctypes
import os
import random
import re
import shutil
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from importlib import resources
from typing import Any

from sysweave.agents.bpf.contract import contract as syscall_contract
from sysweave.agents.bpf.syscalls import BpfUnavailable, SyscallProbe, TargetError
from sysweave.agents.bpf.uprobes_spec import (
    HEADER,
    Probe,
    ProbeSpec,
    UpCall,
    compute_block,
    function_aggregate,
    header_text,
    parse_record,
    up_contract,
)
from sysweave.agents.preconditions import BPFFS, mount_bpffs
from sysweave.agents.queues import DropQueue
from sysweave.schemas.events import Event, EventHeader, LostEvents, make_event_id

__all__ = [
    "DEFAULT_THRESHOLDS_NS", "UprobeConfig", "UprobeProgram", "UprobeSession", "bpf_source", "dump_bpf",
    "executable_of", "functions_matching", "resolve_library", "resolve_probes",
]

_C = up_contract()
CLASS_COMPUTE, CLASS_GPU_KERNEL, CLASS_MEMCPY, CLASS_ALWAYS = (
    _C["UP_CLASS_COMPUTE"], _C["UP_CLASS_GPU_KERNEL"], _C["UP_CLASS_MEMCPY"], _C["UP_CLASS_ALWAYS"])
HIST_BUCKETS, LOST_N = _C["UP_HIST_BUCKETS"], _C["UP_LOST_N"]
LOST_NAMES = {_C["UP_LOST_RINGBUF"]: "uprobe_ringbuf", _C["UP_LOST_AGG_FULL"]: "uprobe_aggregate_table_full",
              _C["UP_LOST_DEPTH"]: "uprobe_nesting_too_deep", _C["UP_LOST_UNMATCHED"]: "uprobe_return_missed"}
# The seed's class thresholds (ns): compute blocks 50 us, kernels 100 us, transfers 1 ms.
DEFAULT_THRESHOLDS_NS = {CLASS_COMPUTE: 50_000, CLASS_GPU_KERNEL: 100_000, CLASS_MEMCPY: 1_000_000}
MAX_PROBES = 256


class UprobeConfig:
    def __init__(self, max_agg: int = 16384, ringbuf_pages: int = 256, queue_capacity: int = 100_000) -> None:
        self.max_agg, self.ringbuf_pages, self.queue_capacity = max_agg, ringbuf_pages, queue_capacity

    def cflags(self, n_probes: int, max_pid: int, targets_pin: str, config_pin: str, sys_cfg_n: int) -> list[str]:
        sc = syscall_contract()
        slots = max(16, (n_probes + 15) // 16 * 16)
        return [f"-DMAX_PROBES={slots}", f"-DMAX_AGG={self.max_agg}", f"-DRINGBUF_PAGES={self.ringbuf_pages}",
                f"-DMAX_PID={max_pid}", f'-DTARGETS_PIN="{targets_pin}"', f'-DCONFIG_PIN="{config_pin}"',
                f"-DSYS_CFG_N={sys_cfg_n}", f"-DSYS_CFG_MODE={sc['CFG_MODE']}", f"-DSYS_CFG_SELF={sc['CFG_SELF']}",
                f"-DSYS_CFG_CGROUP={sc['CFG_CGROUP']}", f"-DSYS_MODE_ALL={sc['MODE_ALL']}",
                f"-DSYS_MODE_CGROUP={sc['MODE_CGROUP']}", f"-I{os.path.dirname(os.path.abspath(__file__))}", "-w"]


def bpf_source() -> str:
    return resources.files("sysweave.agents.bpf").joinpath("uprobes.bpf.c").read_text()


def dump_bpf(n_probes: int = 16) -> str:
    """What --dump-bpf prints for function probes: the cflags (pin paths shown as placeholders), the program
    exactly as compiled and the header it includes."""
    flags = UprobeConfig().cflags(n_probes, 4194304, f"{BPFFS}/<targets pin>", f"{BPFFS}/<config pin>",
                                  syscall_contract()["CFG_N"])
    return ("// cflags: " + " ".join(flags) + "\n" + bpf_source()
            + f"\n// ---- {HEADER} (#include \"{HEADER}\") ----\n" + header_text())


# --- resolution: specs -> probes ------------------------------------------------------------------------

def resolve_library(lib: str | None, default_exe: str | None) -> str:
    """A path, a library name as bcc resolves it (``m``, ``libm``), or None for the traced executable."""
    if lib is None:
        if not default_exe:
            raise TargetError("--uprobe without LIB: probes the traced program, but there is none (give LIB:SYMBOL)")
        return default_exe
    if "/" in lib:
        if not os.path.exists(lib):
            raise TargetError(f"--uprobe library {lib}: No such file or directory")
        return os.path.realpath(lib)
    from bcc import BPF

    for name in (lib, lib[3:] if lib.startswith("lib") else lib):
        found = BPF.find_library(name)
        if found:
            return os.path.realpath(found.decode() if isinstance(found, bytes) else found)
    raise TargetError(f"--uprobe library {lib!r} not found (not a path, and the linker cache has no "
                      f"lib{lib.removeprefix('lib')})")


def functions_matching(path: str, regex: str) -> list[tuple[str, int]]:
    from bcc import BPF

    try:
        found = BPF.get_user_functions_and_addresses(path.encode(), regex.encode())
    except Exception as exc:  # bcc raises bare Exception for unreadable ELF files
        raise TargetError(f"--uprobe {path}: cannot read its symbols: {exc}") from exc
    return [(n.decode() if isinstance(n, bytes) else n, int(a)) for n, a in found]


def resolve_probes(specs: Sequence[ProbeSpec], default_exe: str | None, first_id: int = 0,
                   cls: int = CLASS_COMPUTE) -> list[Probe]:
    """Every function the specs name, with its address; a name or regex that matches nothing is a TargetError."""
    probes: list[Probe] = []
    seen: set[tuple[str, int]] = set()
    for spec in specs:
        path = resolve_library(spec.library, default_exe)
        for f in spec.funcs:
            found = functions_matching(path, f.pattern if f.regex else f"^{re.escape(f.pattern)}$")
            if not found:
                what = f"no function matches /{f.pattern}/" if f.regex else f"no function {f.pattern!r}"
                raise TargetError(f"--uprobe: {what} in {path}")
            for name, addr in sorted(found, key=lambda x: (x[1], x[0])):
                if (path, addr) in seen:
                    continue  # an alias of a function already probed: probing it twice would count twice
                seen.add((path, addr))
                probes.append(Probe(first_id + len(probes), path, name, addr, cls, args=f.args))
    if first_id + len(probes) > MAX_PROBES:
        raise TargetError(f"--uprobe: {len(probes)} functions matched; at most {MAX_PROBES} can be probed "
                          f"(narrow the regex)")
    return probes


# --- the program ----------------------------------------------------------------------------------------

def _ensure_bpffs() -> None:
    why = mount_bpffs()
    if why:
        raise BpfUnavailable(f"function probes need bpffs at {BPFFS} ({why}); fix: mount -t bpf bpf {BPFFS}")


class UprobeProgram:
    """One loaded instance of uprobes.bpf.c with its probes attached."""

    def __init__(self, probes: Sequence[Probe], syscalls: SyscallProbe, config: UprobeConfig | None = None) -> None:
        from bcc import BPF
        from bcc.libbcc import lib

        self.probes = {p.id: p for p in probes}
        self.config = config or UprobeConfig()
        sys_bpf: Any = syscalls.maps  # the syscall program's maps, by name (BpfMap: map_fd, max_entries)
        targets, sys_config = sys_bpf["targets"], sys_bpf["settings"]
        _ensure_bpffs()
        tag = f"{BPFFS}/sysweave_{os.getpid()}_{random.getrandbits(32):08x}"
        pins = {f"{tag}_targets": targets.map_fd, f"{tag}_config": sys_config.map_fd}
        try:
            for path, fd in pins.items():
                if lib.bpf_obj_pin(fd, path.encode()) != 0:
                    raise BpfUnavailable(f"could not pin the syscall program's map at {path}: "
                                         f"{os.strerror(ctypes.get_errno()) or 'error'}")
            flags = self.config.cflags(len(probes), targets.max_entries, f"{tag}_targets", f"{tag}_config",
                                       sys_config.max_entries)
            try:
                self._bpf: Any = BPF(text=bpf_source(), cflags=flags)
            except Exception as exc:  # bcc raises bare Exception for compile/load failures
                raise BpfUnavailable(f"the function-probe program failed to compile or load: {exc}") from exc
        finally:
            for path in pins:
                if os.path.exists(path):
                    os.unlink(path)
        table = self._bpf["probes"]
        for p in probes:
            table[table.Key(p.id)] = table.Leaf(p.cls, p.flags, p.str_arg, p.deref_arg)
        for cls, ns in DEFAULT_THRESHOLDS_NS.items():
            self.set_threshold(cls, ns)
        for p in probes:
            try:
                self._bpf.attach_uprobe(name=p.library.encode(), addr=p.address, fn_name=f"up_entry_{p.id:02x}".encode())
                self._bpf.attach_uretprobe(name=p.library.encode(), addr=p.address,
                                           fn_name=f"up_return_{p.id:02x}".encode())
            except Exception as exc:
                self._bpf.cleanup()
                raise BpfUnavailable(f"could not attach to {p.symbol} in {p.library}: {exc}") from exc
        self.queue: DropQueue[bytes] = DropQueue(self.config.queue_capacity)
        self._bpf["events"].open_ring_buffer(self._on_record)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def set_threshold(self, cls: int, ns: int) -> None:
        """Move a class threshold (compute, gpu kernel, memcpy) in the kernel; takes effect on the next return."""
        t = self._bpf["thresholds"]
        t[t.Key(cls)] = t.Leaf(ns)

    def threshold(self, cls: int) -> int:
        t = self._bpf["thresholds"]
        return int(t[t.Key(cls)].value)

    def _on_record(self, _ctx: Any, data: Any, size: int) -> int:
        self.queue.put(ctypes.string_at(data, size))
        return 0

    def start(self) -> None:
        self._thread = threading.Thread(target=self._poll, name="sysweave-uprobes", daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        while not self._stop.wait(0.02):  # records are submitted without wakeups, as for syscalls
            self._bpf.ring_buffer_consume()
        self._bpf.ring_buffer_consume()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(5)
        self.queue.close()

    def aggregates(self) -> list[tuple[int, int, int, int, list[int]]]:
        """(tgid, probe id, calls, total_ns, hist_log2) summed over CPUs."""
        out = []
        for key, per_cpu in self._bpf["aggs"].items():
            calls = sum(v.calls for v in per_cpu)
            if calls:
                out.append((key.tgid, key.probe, calls, sum(v.total_ns for v in per_cpu),
                            [sum(v.hist[i] for v in per_cpu) for i in range(HIST_BUCKETS)]))
        return out

    def forget(self, keys: Iterable[tuple[int, int]]) -> None:
        """Drop the aggregates of (tgid, probe) pairs already reported (exited processes), so a long-running
        agent's table does not fill up with the dead."""
        table = self._bpf["aggs"]
        for tgid, probe in keys:
            try:
                del table[table.Key(tgid, probe)]
            except KeyError:
                pass

    def lost(self) -> dict[str, int]:
        t = self._bpf["lost"]
        return {LOST_NAMES[i]: int(sum(t[t.Key(i)])) for i in range(LOST_N)} | {"uprobe_queue": self.queue.dropped}

    def close(self) -> None:
        self.stop()
        self._bpf.cleanup()


# --- a session: the program, its decoder thread, windows of exact aggregates --------------------------

Handler = Callable[[UpCall, Probe, int], list[Event]]  # (call, probe, seq) -> events


class UprobeSession:
    """Function probes beside a syscall capture (``EbpfCapture``): events go to ``sink`` on the decoder
    thread; :meth:`snapshot` returns the exact per-function aggregates of the window since the last one."""

    def __init__(self, probes: Sequence[Probe], syscalls: SyscallProbe, sink: Callable[[Event], None], host_id: str,
                 wall_offset_ns: int, handlers: dict[str, Handler] | None = None) -> None:
        self.program = UprobeProgram(probes, syscalls)
        self.sink, self.host_id, self.wall_offset_ns = sink, host_id, wall_offset_ns
        self.producer_id = random.getrandbits(64)
        self.handlers: dict[str, Handler] = {"compute": self._compute, **(handlers or {})}
        self.seq = 0
        self.bad_records = 0
        self.shipped = 0
        self._thread = threading.Thread(target=self._consume, name="sysweave-uprobe-decode", daemon=True)
        self._window_start = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
        self._prev: dict[tuple[int, int], tuple[int, int, list[int]]] = {}
        self._prev_lost: dict[str, int] = {}
        self._snap = 0

    def _compute(self, call: UpCall, probe: Probe, seq: int) -> list[Event]:
        return [compute_block(call, probe, self.host_id, self.producer_id, seq, self.wall_offset_ns)]

    def start(self) -> None:
        self.program.start()
        self._thread.start()

    def _consume(self) -> None:
        for raw in self.program.queue.drain():
            try:
                call = parse_record(raw)
                probe = self.program.probes[call.probe]
            except (ValueError, KeyError):
                self.bad_records += 1
                continue
            self.seq += 1
            for ev in self.handlers[probe.role](call, probe, self.seq):
                self.shipped += 1
                self.sink(ev)

    def stop(self) -> None:
        time.sleep(0.05)
        self.program.stop()
        self._thread.join(30)

    def snapshot(self, root_pid: int) -> list[Event]:
        """FunctionAggregate per (process, function) for the window since the previous snapshot, and losses."""
        now = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
        start = self._window_start
        self._snap += 1
        base = (self._snap << 40) | (1 << 62)
        out: list[Event] = []
        # processes gone before this read: their final counts are in it, then their entries can go
        gone = [k for k in self._prev if not os.path.exists(f"/proc/{k[0]}")]
        for i, (tgid, pid_probe, calls, total, hist) in enumerate(sorted(self.program.aggregates())):
            prev = self._prev.get((tgid, pid_probe))
            self._prev[(tgid, pid_probe)] = (calls, total, hist)
            if prev:
                calls, total, hist = calls - prev[0], total - prev[1], [a - b for a, b in zip(hist, prev[2])]
            if calls:
                out.append(function_aggregate(self.program.probes[pid_probe], tgid, calls, total, hist, (start, now),
                                              self.host_id, make_event_id(self.producer_id, base + i + 16),
                                              self.wall_offset_ns))
        lost_total = {**self.program.lost(), "uprobe_undecodable": self.bad_records}
        for j, (source, count) in enumerate(sorted(lost_total.items())):
            delta = count - self._prev_lost.get(source, 0)
            if delta:
                h = EventHeader(make_event_id(self.producer_id, base + j), self.host_id, root_pid, root_pid, start,
                                start + self.wall_offset_ns, now - start)
                out.append(LostEvents(h, source, delta))
        self._prev_lost = lost_total
        self.program.forget(gone)
        for k in gone:
            del self._prev[k]
        self._window_start = now
        return out

    def close(self) -> None:
        self.program.close()


def executable_of(command: Iterable[str], pids: Iterable[int]) -> str | None:
    """The traced program's executable: the command's (PATH-resolved) or the first attached pid's."""
    cmd = list(command)
    if cmd:
        found = shutil.which(cmd[0]) or (cmd[0] if os.path.exists(cmd[0]) else None)
        return os.path.realpath(found) if found else None
    for pid in pids:
        try:
            return os.readlink(f"/proc/{pid}/exe")
        except OSError:
            continue
    return None
