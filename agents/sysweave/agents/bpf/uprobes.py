"""Function probes (uprobes.bpf.c): resolve ``--uprobe`` specs to function addresses, load the program and
attach entry/return pairs (uprobes_load.py: libbpf's prebuilt object, or bcc's run-time compile as the
fallback), move the class thresholds, drain the ring buffer, read the exact aggregates.

Symbols and library names are resolved here from the ELF files and the linker cache (elf_symbols.py), so
the default path imports no bcc.  The program decides which processes count from the syscall program's own
``targets``/``settings`` maps (shared by fd).

Errors (under CaptureError, see syscalls.py)::

    TargetError     -- a library, symbol or regex that names nothing (the message names it)
    BpfUnavailable  -- the program failed to compile/load/attach
"""

from __future__ import annotations

import os
import random
import re
import shutil
import struct
import threading
import time
from collections.abc import Callable, Iterable, Sequence

from sysweave.agents.bpf.contract import contract as syscall_contract
from sysweave.agents.bpf.elf_symbols import ElfError, find_library, function_symbols, usdt_probes
from sysweave.agents.bpf.libbpf_object import object_path
from sysweave.agents.bpf.objects import RingBuffer
from sysweave.agents.bpf.syscalls import BpfUnavailable, SyscallProbe, TargetError
from sysweave.agents.bpf.uprobes_load import CORE_PARAMS, UprobeConfig, bpf_source, load, loader
from sysweave.agents.bpf.uprobes_spec import (
    HEADER,
    Probe,
    ProbeSpec,
    UpCall,
    UsdtSpec,
    compute_block,
    function_aggregate,
    header_text,
    parse_record,
    up_contract,
)
from sysweave.agents.preconditions import BPFFS
from sysweave.agents.queues import DropQueue
from sysweave.schemas.events import Event, EventHeader, LostEvents, make_event_id

__all__ = [
    "DEFAULT_THRESHOLDS_NS", "Handler", "UprobeConfig", "UprobeProgram", "UprobeSession", "bpf_source", "dump_bpf",
    "executable_of", "functions_matching", "resolve_library", "resolve_probes", "resolve_usdt",
]

_C = up_contract()
CLASS_COMPUTE, CLASS_GPU_KERNEL, CLASS_MEMCPY, CLASS_ALWAYS = (
    _C["UP_CLASS_COMPUTE"], _C["UP_CLASS_GPU_KERNEL"], _C["UP_CLASS_MEMCPY"], _C["UP_CLASS_ALWAYS"])
HIST_BUCKETS, LOST_N = _C["UP_HIST_BUCKETS"], _C["UP_LOST_N"]
LOST_NAMES = {_C["UP_LOST_RINGBUF"]: "uprobe_ringbuf", _C["UP_LOST_AGG_FULL"]: "uprobe_aggregate_table_full",
              _C["UP_LOST_DEPTH"]: "uprobe_nesting_too_deep", _C["UP_LOST_UNMATCHED"]: "uprobe_return_missed"}
# The seed's class thresholds (ns): compute blocks 50 us, kernels 100 us, transfers 1 ms.
DEFAULT_THRESHOLDS_NS = {CLASS_COMPUTE: 50_000, CLASS_GPU_KERNEL: 100_000, CLASS_MEMCPY: 1_000_000}
MAX_PROBES = 256  # the bcc fallback: up_entry_XX/up_return_XX pairs, XX < 0x100
MAX_PROBES_CORE = 4096  # libbpf: the id is a cookie; each probed function x process takes an aggregate slot
_U32, _U64 = struct.Struct("<I"), struct.Struct("<Q")
_AGG_KEY = struct.Struct("<II")
_AGG_VAL, _AGG_NAMES = _C.fixed_prefix("up_agg_val")


def dump_bpf(n_probes: int = 16) -> str:
    """What --dump-bpf prints for function probes: the loader this host uses, how each loader builds the
    program (the bcc cflags with pin paths as placeholders), the program and the header it includes."""
    kind, why = loader()
    used = "// function probes, loader on this host: " + (kind if kind == "libbpf" else f"bcc ({why or 'requested'})")
    core = (f"// libbpf: {object_path('uprobes')}, built ahead of time with -DSYSWEAVE_CORE "
            + " ".join(f"-D{k}={v}" for k, v in CORE_PARAMS.items())
            + "; set at load: up_limits (pid_max, the syscall contract), map sizes; probe id = attach cookie")
    flags = UprobeConfig().cflags(n_probes, 4194304, f"{BPFFS}/<targets pin>", f"{BPFFS}/<config pin>",
                                  syscall_contract()["CFG_N"])
    return ("\n".join((used, core, "// bcc (the fallback, compiled at run time) cflags: " + " ".join(flags)))
            + "\n" + bpf_source() + f"\n// ---- {HEADER} (#include \"{HEADER}\") ----\n" + header_text())


# --- resolution: specs -> probes ------------------------------------------------------------------------

def resolve_library(lib: str | None, default_exe: str | None, flag: str = "--uprobe") -> str:
    """A path, a library name as the linker cache resolves it (``m``, ``libm``), or None for the traced
    executable."""
    if lib is None:
        if not default_exe:
            raise TargetError(f"{flag} without LIB: probes the traced program, but there is none (name LIB first)")
        return default_exe
    if "/" in lib:
        if not os.path.exists(lib):
            raise TargetError(f"{flag} library {lib}: No such file or directory")
        return os.path.realpath(lib)
    for name in (lib, lib[3:] if lib.startswith("lib") else lib):
        found = find_library(name)
        if found:
            return os.path.realpath(found)
    raise TargetError(f"{flag} library {lib!r} not found (not a path, and the linker cache has no "
                      f"lib{lib.removeprefix('lib')})")


def functions_matching(path: str, regex: str) -> list[tuple[str, int]]:
    """(name, address) of the functions of ``path`` whose name matches ``regex`` at its start (re.match)."""
    try:
        symbols = function_symbols(path)
    except ElfError as exc:
        raise TargetError(f"--uprobe {path}: cannot read its symbols: {exc}") from exc
    pattern = re.compile(regex)
    return [(name, addr) for name, addr in symbols if pattern.match(name)]


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
    limit, kind = probe_limit()
    if first_id + len(probes) > limit:
        raise TargetError(f"--uprobe: {len(probes)} functions matched; at most {limit} can be probed with the "
                          f"{kind} loader (narrow the regex)")
    return probes


def probe_limit() -> tuple[int, str]:
    """(how many functions one run can probe, the loader): bcc compiles a pair of programs per probe id, the
    prebuilt object takes the id from each attachment's cookie (bounded by the aggregate table instead)."""
    try:
        kind = loader()[0]
    except BpfUnavailable:
        kind = "bcc"
    return (MAX_PROBES_CORE, kind) if kind == "libbpf" else (MAX_PROBES, kind)


def resolve_usdt(specs: Sequence[UsdtSpec], default_exe: str | None, first_id: int = 0) -> list[Probe]:
    """A probe per USDT probe the specs name (every site of it); one a binary does not declare is a TargetError
    that lists what it does declare."""
    probes: list[Probe] = []
    seen: set[tuple[str, str]] = set()
    for spec in specs:
        path = resolve_library(spec.library, default_exe, "--usdt")
        try:
            declared = usdt_probes(path)
        except ElfError as exc:
            raise TargetError(f"--usdt {path}: cannot read its USDT notes: {exc}") from exc
        symbol = f"{spec.provider}:{spec.name}"
        if (spec.provider, spec.name) not in declared:
            have = ", ".join(f"{p}:{n}" for p, n in declared[:12]) + (", ..." if len(declared) > 12 else "")
            raise TargetError(f"--usdt: no USDT probe {symbol} in {path} (it declares {have or 'none'})")
        if (path, symbol) not in seen:
            seen.add((path, symbol))
            probes.append(Probe(first_id + len(probes), path, symbol, 0, CLASS_ALWAYS, role="usdt"))
    return probes


# --- the program ----------------------------------------------------------------------------------------

class UprobeProgram:
    """One loaded instance of uprobes.bpf.c with its probes attached (libbpf or bcc: uprobes_load.py)."""

    def __init__(self, probes: Sequence[Probe], syscalls: SyscallProbe, config: UprobeConfig | None = None) -> None:
        self.probes = {p.id: p for p in probes}
        self.config = config or UprobeConfig()
        loaded = load(probes, syscalls.maps["targets"], syscalls.maps["settings"], self.config)
        self.origin, self.maps, self._close = loaded.origin, loaded.maps, loaded.close
        for cls, ns in DEFAULT_THRESHOLDS_NS.items():
            self.set_threshold(cls, ns)
        self.queue: DropQueue[bytes] = DropQueue(self.config.queue_capacity)
        self._ring = RingBuffer(self.maps["events"].fd, self._on_record)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _on_record(self, data: bytes) -> None:
        self.queue.put(data)

    def set_threshold(self, cls: int, ns: int) -> None:
        """Move a class threshold (compute, gpu kernel, memcpy) in the kernel; takes effect on the next return."""
        self.maps["thresholds"].update(_U32.pack(cls), _U64.pack(ns))

    def threshold(self, cls: int) -> int:
        value = self.maps["thresholds"].lookup(_U32.pack(cls))
        return int(_U64.unpack_from(value)[0]) if value else 0

    def start(self) -> None:
        self._thread = threading.Thread(target=self._poll, name="sysweave-uprobes", daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        while not self._stop.wait(0.02):  # records are submitted without wakeups, as for syscalls
            self._ring.consume()
        self._ring.consume()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(5)
        self.queue.close()

    def aggregates(self) -> list[tuple[int, int, int, int, list[int]]]:
        """(tgid, probe id, calls, total_ns, hist_log2) summed over CPUs."""
        table, out = self.maps["aggs"], []
        calls_i, total_i, hist_i = _AGG_NAMES.index("calls"), _AGG_NAMES.index("total_ns"), _AGG_NAMES.index("hist0")
        for key in list(table.keys()):
            value = table.lookup(key)
            if value is None:
                continue
            rows = [_AGG_VAL.unpack_from(v) for v in table.per_cpu(value)]
            calls = sum(r[calls_i] for r in rows)
            if calls:
                tgid, probe = _AGG_KEY.unpack(key)
                out.append((tgid, probe, calls, sum(r[total_i] for r in rows),
                            [sum(r[hist_i + i] for r in rows) for i in range(HIST_BUCKETS)]))
        return out

    def forget(self, keys: Iterable[tuple[int, int]]) -> None:
        """Drop the aggregates of (tgid, probe) pairs already reported (exited processes), so a long-running
        agent's table does not fill up with the dead."""
        for tgid, probe in keys:
            self.maps["aggs"].delete(_AGG_KEY.pack(tgid, probe))

    def lost(self) -> dict[str, int]:
        table = self.maps["lost"]
        out = {}
        for i in range(LOST_N):
            value = table.lookup(_U32.pack(i))
            out[LOST_NAMES[i]] = sum(_U64.unpack(v)[0] for v in table.per_cpu(value)) if value else 0
        return out | {"uprobe_queue": self.queue.dropped}

    def close(self) -> None:
        self.stop()
        self._ring.close()
        self._close()


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
        """Drain and stop.  No grace sleep: a record is in the ring buffer before its call returns, and the
        program's stop() consumes the ring once more after its reader ends."""
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
