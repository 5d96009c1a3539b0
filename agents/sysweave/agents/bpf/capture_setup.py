"""What syscall capture is configured with and needs from the host: the probe's parameters (bcc cflags, or
the CO-RE object's load-time limits), the program text --dump-bpf prints, the capabilities, and why
capture cannot run here (``unavailable_reason``), naming the loader it will use (``loader``).

Two loaders share syscalls.bpf.c (compat.h): libbpf loads syscalls.bpf.o, compiled ahead of time with
CORE_PARAMS (infra/build-bpf.sh, ``python -m sysweave.agents.bpf.build``), and sets what varies per host or
run before load: pid_max, the aggregate slots, the payload cap (read-only globals) and the maps' sizes.
bcc compiles the same text at run time with ``ProbeConfig.cflags()`` where the object cannot be used.
"""

from __future__ import annotations

import os
import struct
import sys
from dataclasses import dataclass

from sysweave.agents.bpf.contract import HEADER, contract, header_text
from sysweave.agents.bpf.libbpf_object import loader_choice
from sysweave.agents.bpf.objects import ObjectError
from sysweave.agents.preconditions import check_bcc, check_kernel_headers, check_privileges, check_tracefs

__all__ = ["CORE_PARAMS", "ProbeConfig", "bpf_dir", "bpf_source", "dump_bpf", "loader", "loader_safe", "pid_max",
           "say_fallback", "tracefs_format", "unavailable_reason"]

_C = contract()
# What syscalls.bpf.o is compiled with: the record's fixed sizes, and bounds the load-time limits stay within
# (PAYLOAD_CAP: the largest payload cap a run may ask for -- a per-CPU value, the scratch record, is at most
# 32 KiB; MAX_PID/MAX_AGG/RINGBUF_PAGES: default map sizes, set per run at load).
CORE_PARAMS = {"PATH_CAP": 256, "ARG_CAP": 256, "MAX_ARGS": 20, "PAYLOAD_CAP": 16384, "MAX_PID": 4194304,
               "MAX_AGG": 65536, "RINGBUF_PAGES": 1024}
_LIMITS = struct.Struct("<IIII")  # syscalls.bpf.c `limits`: max_pid, max_agg, payload_cap, pad


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
        group = _C["AGG_GROUP"]
        if not group <= self.max_agg <= 1 << _C["AGG_GEN_SHIFT"] or self.max_agg % group:
            raise ValueError(f"aggregate slots {self.max_agg} must be a multiple of {group} in "
                             f"[{group}, {1 << _C['AGG_GEN_SHIFT']}]")
        if self.payload_cap & (self.payload_cap - 1) or not 64 <= self.payload_cap <= 65536:
            raise ValueError(f"payload capture size {self.payload_cap} must be a power of two in [64, 65536]")
        flags = [
            f"-DMAX_PID={pid_max()}", f"-DPATH_CAP={self.path_cap}", f"-DPAYLOAD_CAP={self.payload_cap}",
            f"-DARG_CAP={self.arg_cap}", f"-DMAX_ARGS={self.max_args}", f"-DMAX_AGG={self.max_agg}",
            f"-DRINGBUF_PAGES={self.ringbuf_pages}", f"-I{bpf_dir()}", "-w",
        ]
        if "group_dead" in tracefs_format("sched/sched_process_exit"):
            flags.append("-DHAVE_GROUP_DEAD")
        return flags

    def core_mismatch(self) -> str | None:
        """Why the prebuilt object cannot run this configuration (None: it can)."""
        fixed = {"PATH_CAP": self.path_cap, "ARG_CAP": self.arg_cap, "MAX_ARGS": self.max_args}
        for name, value in fixed.items():
            if value != CORE_PARAMS[name]:
                return f"syscalls.bpf.o is built with {name}={CORE_PARAMS[name]}, this run asks for {value}"
        if self.payload_cap > CORE_PARAMS["PAYLOAD_CAP"]:
            return f"payload cap {self.payload_cap} is above the object's {CORE_PARAMS['PAYLOAD_CAP']}"
        return None

    def core_rodata(self) -> bytes:
        """syscalls.bpf.o's read-only globals for this run (checked by cflags()'s rules first)."""
        self.cflags()
        return _LIMITS.pack(pid_max(), self.max_agg, self.payload_cap, 0)


def pid_max() -> int:
    try:
        with open("/proc/sys/kernel/pid_max") as f:
            return int(f.read())
    except OSError:
        return 4_194_304


def tracefs_format(event: str) -> str:
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
    with open(os.path.join(bpf_dir(), "syscalls.bpf.c")) as f:
        return f.read()


def dump_bpf(config: ProbeConfig) -> str:
    """What --dump-bpf prints: which loader this host uses and how each builds the program, the program, and
    the headers it includes."""
    kind, why = loader_safe(config)
    core = (f"// libbpf: {os.path.join(bpf_dir(), 'syscalls.bpf.o')}, built ahead of time with -DSYSWEAVE_CORE "
            + " ".join(f"-D{k}={v}" for k, v in CORE_PARAMS.items())
            + f"; set at load: max_pid={pid_max()} max_agg={config.max_agg} payload_cap={config.payload_cap}")
    bcc = "// bcc (the fallback, compiled at run time) cflags: " + " ".join(config.cflags())
    used = "// loader on this host: " + (kind if kind == "libbpf" else f"bcc ({why or 'requested'})")
    return ("\n".join((used, core, bcc)) + "\n" + bpf_source()
            + "\n// ---- compat.h (#include \"compat.h\") ----\n" + _read("compat.h")
            + f"\n// ---- {HEADER} (#include \"{HEADER}\", from -I{bpf_dir()}) ----\n" + header_text())


def _read(name: str) -> str:
    with open(os.path.join(bpf_dir(), name)) as f:
        return f.read()


def loader(config: ProbeConfig) -> tuple[str, str | None]:
    """("libbpf" | "bcc", why bcc when it is the fallback); ObjectError when libbpf is required and cannot be."""
    kind, why = loader_choice("syscalls")
    if kind == "libbpf":
        mismatch = config.core_mismatch()
        if mismatch and os.environ.get("SYSWEAVE_BPF_LOADER") == "libbpf":
            raise ObjectError(f"SYSWEAVE_BPF_LOADER=libbpf but {mismatch}")
        if mismatch:
            return "bcc", mismatch
    return kind, why


def loader_safe(config: ProbeConfig) -> tuple[str, str | None]:
    try:
        return loader(config)
    except ObjectError as exc:
        return "bcc", str(exc)


def say_fallback(why: str) -> None:
    """The one line a run that falls back to bcc's run-time compile prints."""
    sys.stderr.write(f"sysweave: compiling the BPF programs with bcc at run time (seconds): {why}\n")


def unavailable_reason(config: ProbeConfig | None = None) -> str | None:
    """Why eBPF capture cannot run here, or None if it can (checked before loading; preconditions.py)."""
    found = check_privileges()
    if not found.ok:
        return found.line()
    try:
        kind, why = loader(config or ProbeConfig())
    except ObjectError as exc:
        return str(exc)
    if kind == "libbpf":
        return None  # raw tracepoints by name and the kernel's BTF: no bcc, headers or tracefs needed
    for check in (check_bcc, check_kernel_headers, check_tracefs):
        found = check()
        if not found.ok:
            return (f"{why}, and the bcc fallback: " if why else "") + found.line()
    return None
