"""Loader for syscalls.bpf.c: compile with cflags, set targets/thresholds, drain the ring buffer.

Errors::

    CaptureError
      ├── BpfUnavailable   -- bcc missing, no privileges (CAP_BPF/CAP_PERFMON or root), no headers/tracefs
      └── TargetError      -- a PID to attach to does not exist
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources
from typing import Any

from sysweave.agents.bpf.contract import HEADER, contract, header_text
from sysweave.agents.queues import DropQueue
from sysweave.agents.syscall_args import NR_BY_NAME, OBSERVABLE
from sysweave.schemas.errors import AgentError

# The contract (slots, modes, flags, target states, lost slots) comes from syscalls.h: never copied here.
_C = contract()
CFG_SLOW_NS, CFG_FLAGS, CFG_ARM_TGID = _C["CFG_SLOW_NS"], _C["CFG_FLAGS"], _C["CFG_ARM_TGID"]
CFG_MODE, CFG_SELF, CFG_CGROUP = _C["CFG_MODE"], _C["CFG_SELF"], _C["CFG_CGROUP"]
MODE_TARGETS, MODE_ALL, MODE_CGROUP = _C["MODE_TARGETS"], _C["MODE_ALL"], _C["MODE_CGROUP"]
FLAG_OBSERVABLE, FLAG_ALL, FLAG_FOLLOW = _C["FLAG_OBSERVABLE"], _C["FLAG_ALL"], _C["FLAG_FOLLOW"]
TGT_NONE, TGT_ACTIVE = _C["TGT_NONE"], _C["TGT_ACTIVE"]
OBS_IO, OBS_ALWAYS, OBS_NR_MAX = _C["OBS_IO"], _C["OBS_ALWAYS"], _C["OBS_NR_MAX"]
LOST_RINGBUF, LOST_AGG_FULL, LOST_N = _C["LOST_RINGBUF"], _C["LOST_AGG_FULL"], _C["LOST_N"]
HIST_BUCKETS = _C["HIST_BUCKETS"]
ALWAYS_SHIP = frozenset({"clone", "clone3", "fork", "vfork", "execve", "execveat", "wait4", "exit_group", "kill"})


class CaptureError(AgentError):
    """Capture could not start or continue."""


class BpfUnavailable(CaptureError):
    pass


class TargetError(CaptureError):
    pass


@dataclass(frozen=True, slots=True)
class ProbeConfig:
    path_cap: int = 256
    payload_cap: int = 4096  # bytes of write/send payload kept per call (power of two)
    arg_cap: int = 256
    max_args: int = 20
    max_agg: int = 65536  # (process, syscall) pairs
    ringbuf_pages: int = 1024  # 4 MiB
    queue_capacity: int = 200_000  # records between the ring-buffer callback and the decoder

    def cflags(self) -> list[str]:
        if self.payload_cap & (self.payload_cap - 1) or not 64 <= self.payload_cap <= 65536:
            raise ValueError(f"payload capture size {self.payload_cap} must be a power of two in [64, 65536]")
        flags = [
            f"-DMAX_PID={pid_max()}", f"-DPATH_CAP={self.path_cap}", f"-DPAYLOAD_CAP={self.payload_cap}",
            f"-DARG_CAP={self.arg_cap}", f"-DMAX_ARGS={self.max_args}", f"-DMAX_AGG={self.max_agg}",
            f"-DRINGBUF_PAGES={self.ringbuf_pages}", f"-I{bpf_dir()}", "-w",
        ]
        if "group_dead" in _tracefs_format("sched/sched_process_exit"):
            flags.append("-DHAVE_GROUP_DEAD")
        return flags


def pid_max() -> int:
    try:
        with open("/proc/sys/kernel/pid_max") as f:
            return int(f.read())
    except OSError:
        return 4_194_304


def _tracefs_format(event: str) -> str:
    for root in ("/sys/kernel/tracing", "/sys/kernel/debug/tracing"):
        try:
            with open(f"{root}/events/{event}/format") as f:
                return f.read()
        except OSError:
            continue
    return ""


def bpf_dir() -> str:
    """This package's directory: the include path for syscalls.h (an installed package is a real directory)."""
    return os.path.dirname(os.path.abspath(__file__))


def bpf_source() -> str:
    return resources.files("sysweave.agents.bpf").joinpath("syscalls.bpf.c").read_text()


def dump_bpf(config: ProbeConfig) -> str:
    """What --dump-bpf prints: the cflags, the program exactly as compiled, and the header it includes."""
    return ("// cflags: " + " ".join(config.cflags()) + "\n" + bpf_source()
            + f"\n// ---- {HEADER} (#include \"{HEADER}\", from -I{bpf_dir()}) ----\n" + header_text())


# What capture needs without root, measured as a non-root user on kernel 6.18 (tests/cluster/test_capabilities.py):
# CAP_BPF (maps, programs), CAP_PERFMON (attach the tracepoints), CAP_DAC_READ_SEARCH (tracefs is 0700 root).
# The Helm chart grants exactly these. (Kernels before 5.11 also need CAP_SYS_RESOURCE for RLIMIT_MEMLOCK.)
REQUIRED_CAPABILITIES = (("CAP_BPF", 39), ("CAP_PERFMON", 38), ("CAP_DAC_READ_SEARCH", 2))


def missing_capabilities() -> list[str]:
    """The REQUIRED_CAPABILITIES this process's effective set lacks (root normally has them all)."""
    try:
        with open("/proc/self/status") as f:
            eff = next(int(line.split()[1], 16) for line in f if line.startswith("CapEff:"))
    except (OSError, StopIteration, ValueError, IndexError):
        return [] if os.geteuid() == 0 else [name for name, _ in REQUIRED_CAPABILITIES]
    return [name for name, bit in REQUIRED_CAPABILITIES if not eff >> bit & 1]


def unavailable_reason() -> str | None:
    """Why eBPF capture cannot run here, or None if it can (checked before compiling)."""
    missing = missing_capabilities()
    if missing:
        return (f"eBPF capture needs root or the capabilities {' + '.join(n for n, _ in REQUIRED_CAPABILITIES)}; "
                f"this process lacks {', '.join(missing)}")
    try:
        import bcc  # noqa: F401
    except ImportError:
        return "the bcc Python module is not importable (install Debian's python3-bpfcc; run 'make setup')"
    if not os.path.exists(f"/lib/modules/{os.uname().release}/build/include"):
        return f"no kernel headers at /lib/modules/{os.uname().release}/build (run 'make setup')"
    if not _tracefs_format("raw_syscalls/sys_enter"):
        return "tracefs is not mounted (mount -t tracefs tracefs /sys/kernel/tracing)"
    return None


class SyscallProbe:
    """One loaded instance of syscalls.bpf.c."""

    def __init__(self, config: ProbeConfig) -> None:
        reason = unavailable_reason()
        if reason:
            raise BpfUnavailable(reason)
        from bcc import BPF

        self.config = config
        try:
            self._bpf: Any = BPF(text=bpf_source(), cflags=config.cflags())
        except Exception as exc:  # bcc raises bare Exception for compile/load failures
            raise BpfUnavailable(f"the BPF program failed to compile or load: {exc}") from exc
        self.queue: DropQueue[bytes] = DropQueue(config.queue_capacity)
        self._targets = self._bpf["targets"]
        self._config = self._bpf["config"]
        self._stop = threading.Event()
        self.drain_interval_s = 0.02
        self._thread: threading.Thread | None = None
        obs = self._bpf["observable"]
        for name, nr in NR_BY_NAME.items():
            bits = (OBS_IO if name in OBSERVABLE else 0) | (OBS_ALWAYS if name in ALWAYS_SHIP else 0)
            if bits and nr < OBS_NR_MAX:
                obs[obs.Key(nr)] = obs.Leaf(bits)
        self._bpf["events"].open_ring_buffer(self._on_record)

    # --- configuration (may change while running: the adaptive controller drives thresholds) ---
    def set_config(self, slow_ns: int, observable: bool, ship_all: bool, follow: bool) -> None:
        flags = (FLAG_OBSERVABLE if observable else 0) | (FLAG_ALL if ship_all else 0) | (FLAG_FOLLOW if follow else 0)
        self._set(CFG_SLOW_NS, slow_ns)
        self._set(CFG_FLAGS, flags)

    def set_slow_threshold(self, slow_ns: int) -> None:
        self._set(CFG_SLOW_NS, slow_ns)

    def slow_threshold(self) -> int:
        """The sampling threshold (ns) the kernel applies now (read back from the BPF map)."""
        return int(self._config[self._config.Key(CFG_SLOW_NS)].value)

    def arm(self, parent_tgid: int) -> None:
        """Children forked by ``parent_tgid`` from now on are traced from their exec."""
        self._set(CFG_ARM_TGID, parent_tgid)

    def disarm(self) -> None:
        self._set(CFG_ARM_TGID, 0)

    def _set(self, slot: int, value: int) -> None:
        self._config[self._config.Key(slot)] = self._config.Leaf(value)

    def trace_all(self, except_tgid: int) -> None:
        """Every process on the host but ``except_tgid`` (the agent itself)."""
        self._set(CFG_SELF, except_tgid)
        self._set(CFG_MODE, MODE_ALL)

    def trace_cgroup(self, path: str) -> None:
        """Every process in the cgroup (v2) at ``path``; its id is the directory's inode number."""
        try:
            cgroup_id = os.stat(path).st_ino
        except OSError as exc:
            raise TargetError(f"cgroup {path}: {exc.strerror}") from exc
        self._set(CFG_CGROUP, cgroup_id)
        self._set(CFG_MODE, MODE_CGROUP)

    def add_targets(self, pids: Iterable[int]) -> None:
        for pid in pids:
            if not os.path.exists(f"/proc/{pid}"):
                raise TargetError(f"attach: pid {pid}: No such process")
            self._targets[self._targets.Key(pid)] = self._targets.Leaf(TGT_ACTIVE)

    def remove_targets(self, pids: Iterable[int]) -> None:
        for pid in pids:
            self._targets[self._targets.Key(pid)] = self._targets.Leaf(TGT_NONE)

    # --- the reader: the callback only copies and enqueues ---
    def _on_record(self, _ctx: Any, data: Any, size: int) -> int:
        import ctypes

        self.queue.put(ctypes.string_at(data, size))
        return 0

    def reset(self) -> None:
        """Forget the previous run's statistics and losses (the probe is reused across runs)."""
        self._bpf["aggs"].clear()
        lost = self._bpf["lost"]
        for slot in range(LOST_N):
            lost[lost.Key(slot)] = lost.Leaf(*([0] * len(lost[lost.Key(slot)])))

    def start(self) -> None:
        self.queue = DropQueue(self.config.queue_capacity)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, name="sysweave-ringbuf", daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        # The kernel side submits without wakeups (BPF_RB_NO_WAKEUP), so poll() would sleep through
        # data: consume on a timer. 20 ms x a 4 MiB ring = room for ~200 MB/s of records.
        while not self._stop.wait(self.drain_interval_s):
            self._bpf.ring_buffer_consume()
        self._bpf.ring_buffer_consume()

    def stop(self) -> None:
        """Drain what the ring buffer still holds, then stop the reader."""
        self._stop.set()
        if self._thread:
            self._thread.join(5)
        self.queue.close()

    # --- exact statistics ---
    def aggregates(self) -> list[tuple[int, int, int, int, int, list[int]]]:
        """(tgid, nr, calls, errors, total_ns, hist_log2) per (process, syscall), summed over CPUs."""
        out = []
        for key, per_cpu in self._bpf["aggs"].items():
            calls = sum(v.calls for v in per_cpu)
            if not calls:
                continue
            hist = [sum(v.hist[i] for v in per_cpu) for i in range(HIST_BUCKETS)]
            out.append((key.tgid, key.nr, calls, sum(v.errors for v in per_cpu), sum(v.total_ns for v in per_cpu), hist))
        return out

    def lost(self) -> dict[str, int]:
        table = self._bpf["lost"]
        ringbuf = sum(table[table.Key(LOST_RINGBUF)])
        agg_full = sum(table[table.Key(LOST_AGG_FULL)])
        return {"ringbuf": int(ringbuf), "aggregate_table_full": int(agg_full), "queue": self.queue.dropped}

    def close(self) -> None:
        self.stop()
        self._bpf.cleanup()
