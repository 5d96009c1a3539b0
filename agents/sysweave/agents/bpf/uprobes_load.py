"""Loading uprobes.bpf.c and attaching its probes: libbpf (uprobes.bpf.o, built ahead of time) or bcc.

libbpf, the default where the object and the kernel's BTF are there (uprobes_core.py): one entry and one
return program attached at every function with the probe id as the attachment's cookie (uprobe_multi
links); this run's limits go into the read-only globals and the maps' sizes before load; the syscall
program's ``targets``/``settings`` maps are reused by fd (no bpffs).  No compiler, no kernel headers, no bcc
import.

bcc, the fallback (no BTF, no object, or ``SYSWEAVE_BPF_LOADER=bcc``; one line says why): the same text
compiled at run time with :meth:`UprobeConfig.cflags` (a pair of programs per probe id), the syscall maps
shared through pins in bpffs that live only for the time of the load.

Either way the caller gets :class:`LoadedUprobes`: the maps user space touches by fd (objects.BpfMap), so
reading aggregates, moving thresholds and draining the ring buffer are the same code for both.
"""

from __future__ import annotations

import ctypes
import os
import random
import struct
import sys
from collections.abc import Sequence
from importlib import resources
from typing import Any

from sysweave.agents.bpf.contract import contract as syscall_contract
from sysweave.agents.bpf.libbpf_object import loader_choice
from sysweave.agents.bpf.objects import BpfMap, ObjectError, libbpf
from sysweave.agents.bpf.syscalls import BpfUnavailable
from sysweave.agents.bpf.uprobes_core import MAPS, CoreSettings, LoadedUprobes, load_core
from sysweave.agents.bpf.uprobes_spec import Probe
from sysweave.agents.preconditions import BPFFS, mount_bpffs

__all__ = ["CORE_PARAMS", "MAPS", "LoadedUprobes", "UprobeConfig", "bpf_source", "load", "loader"]

# What uprobes.bpf.o is built with (build.py): default map sizes, each set per run at load.
CORE_PARAMS = {"MAX_PROBES": 256, "MAX_AGG": 16384, "RINGBUF_PAGES": 256}
# uprobes.bpf.c `up_limits`: max_pid, cfg_mode, cfg_self, cfg_cgroup, mode_all, mode_cgroup, pad[2]
_LIMITS = struct.Struct("<8I")


class UprobeConfig:
    """``attach`` (libbpf path): "auto" (uprobe_multi links where the kernel has them, else one uprobe per
    function), "multi" or "each" (either, or an error)."""

    def __init__(self, max_agg: int = 16384, ringbuf_pages: int = 256, queue_capacity: int = 100_000,
                 attach: str = "auto") -> None:
        if attach not in ("auto", "multi", "each"):
            raise ValueError(f"uprobe attach mode {attach!r}: expected auto, multi or each")
        self.max_agg, self.ringbuf_pages, self.queue_capacity = max_agg, ringbuf_pages, queue_capacity
        self.attach = attach

    def cflags(self, n_probes: int, max_pid: int, targets_pin: str, config_pin: str, sys_cfg_n: int) -> list[str]:
        """The bcc fallback's compile flags (the CO-RE object takes the same settings at load)."""
        sc = syscall_contract()
        slots = max(16, (n_probes + 15) // 16 * 16)
        return [f"-DMAX_PROBES={slots}", f"-DMAX_AGG={self.max_agg}", f"-DRINGBUF_PAGES={self.ringbuf_pages}",
                f"-DMAX_PID={max_pid}", f'-DTARGETS_PIN="{targets_pin}"', f'-DCONFIG_PIN="{config_pin}"',
                f"-DSYS_CFG_N={sys_cfg_n}", f"-DSYS_CFG_MODE={sc['CFG_MODE']}", f"-DSYS_CFG_SELF={sc['CFG_SELF']}",
                f"-DSYS_CFG_CGROUP={sc['CFG_CGROUP']}", f"-DSYS_MODE_ALL={sc['MODE_ALL']}",
                f"-DSYS_MODE_CGROUP={sc['MODE_CGROUP']}", f"-I{os.path.dirname(os.path.abspath(__file__))}", "-w"]

    def core_rodata(self, max_pid: int) -> bytes:
        """uprobes.bpf.o's read-only globals: the targets array's size and the syscall program's contract."""
        sc = syscall_contract()
        return _LIMITS.pack(max_pid, sc["CFG_MODE"], sc["CFG_SELF"], sc["CFG_CGROUP"], sc["MODE_ALL"],
                            sc["MODE_CGROUP"], 0, 0)


def bpf_source() -> str:
    return resources.files("sysweave.agents.bpf").joinpath("uprobes.bpf.c").read_text()


def loader() -> tuple[str, str | None]:
    """("libbpf" | "bcc", why bcc when it is the fallback); BpfUnavailable when libbpf is required and cannot be."""
    try:
        return loader_choice("uprobes")
    except ObjectError as exc:
        raise BpfUnavailable(str(exc)) from exc


def load(probes: Sequence[Probe], targets: BpfMap, settings: BpfMap, config: UprobeConfig) -> LoadedUprobes:
    """Load the program the way this host allows and attach an entry and a return probe per function."""
    kind, why = loader()
    if kind == "libbpf":
        return load_core(probes, targets, settings, CoreSettings(config.core_rodata(targets.max_entries),
                                                                 config.max_agg, config.ringbuf_pages * 4096,
                                                                 config.attach))
    if why:
        sys.stderr.write(f"sysweave: compiling the function-probe program with bcc at run time (seconds): {why}\n")
    return _load_bcc(probes, targets, settings, config)


def _write_probes(table: BpfMap, probes: Sequence[Probe]) -> None:
    for p in probes:
        table.update(struct.pack("<I", p.id), struct.pack("<4I", p.cls, p.flags, p.str_arg, p.deref_arg))


def _ensure_bpffs() -> None:
    why = mount_bpffs()
    if why:
        raise BpfUnavailable(f"the bcc fallback of function probes needs bpffs at {BPFFS} ({why}); "
                             f"fix: mount -t bpf bpf {BPFFS}")


def _load_bcc(probes: Sequence[Probe], targets: BpfMap, settings: BpfMap, config: UprobeConfig) -> LoadedUprobes:
    usdt = [p.symbol for p in probes if p.role == "usdt"]
    if usdt:
        raise BpfUnavailable(f"--usdt {usdt[0]}: USDT probes need libbpf and the prebuilt uprobes.bpf.o, and this "
                             f"run uses the bcc fallback ({loader()[1] or 'SYSWEAVE_BPF_LOADER=bcc'})")
    from bcc import BPF

    _ensure_bpffs()
    tag = f"{BPFFS}/sysweave_{os.getpid()}_{random.getrandbits(32):08x}"
    pins = {f"{tag}_targets": targets.fd, f"{tag}_config": settings.fd}
    try:
        for path, fd in pins.items():
            if libbpf().bpf_obj_pin(fd, path.encode()) != 0:
                raise BpfUnavailable(f"could not pin the syscall program's map at {path}: "
                                     f"{os.strerror(ctypes.get_errno()) or 'error'}")
        flags = config.cflags(len(probes), targets.max_entries, f"{tag}_targets", f"{tag}_config",
                              settings.max_entries)
        try:
            bpf: Any = BPF(text=bpf_source(), cflags=flags)
        except Exception as exc:  # bcc raises bare Exception for compile/load failures
            raise BpfUnavailable(f"the function-probe program failed to compile or load: {exc}") from exc
    finally:
        for path in pins:
            if os.path.exists(path):
                os.unlink(path)
    maps = {n: BpfMap(bpf[n.encode()].map_fd, n, owned=False) for n in MAPS}
    _write_probes(maps["probes"], probes)
    for p in probes:
        try:
            bpf.attach_uprobe(name=p.library.encode(), addr=p.address, fn_name=f"up_entry_{p.id:02x}".encode())
            bpf.attach_uretprobe(name=p.library.encode(), addr=p.address, fn_name=f"up_return_{p.id:02x}".encode())
        except Exception as exc:
            bpf.cleanup()
            raise BpfUnavailable(f"could not attach to {p.symbol} in {p.library}: {exc}") from exc
    return LoadedUprobes(maps, "compiled", bpf.cleanup)
