"""Loading uprobes.bpf.c and attaching its probes: libbpf (uprobes.bpf.o, built ahead of time) or bcc.

libbpf, the default where the object and the kernel's BTF are there: one entry and one return program,
attached once per function (``bpf_program__attach_uprobe_opts`` at the function's file offset) with the
probe id as the attachment's cookie; this run's limits go into the read-only globals and the maps' sizes
before load; the syscall program's ``targets``/``settings`` maps are reused by fd (no bpffs).  No compiler,
no kernel headers, no bcc import.

bcc, the fallback (no BTF, no object, or ``SYSWEAVE_BPF_LOADER=bcc``; one line says why): the same text
compiled at run time with :meth:`UprobeConfig.cflags` (a pair of programs per probe id), the syscall maps
shared through pins in bpffs that live only for the time of the load.

Either way the caller gets :class:`LoadedUprobes`: the maps user space touches by fd (objects.BpfMap), so
reading aggregates, moving thresholds and draining the ring buffer are the same code for both.
"""

from __future__ import annotations

import ctypes
import errno
import os
import random
import struct
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

from sysweave.agents.bpf.contract import contract as syscall_contract
from sysweave.agents.bpf.elf_symbols import ElfError, file_offset
from sysweave.agents.bpf.libbpf_object import CoreObject, loader_choice
from sysweave.agents.bpf.objects import BpfMap, ObjectError, libbpf
from sysweave.agents.bpf.syscalls import BpfUnavailable
from sysweave.agents.bpf.uprobe_multi import BPF_TRACE_UPROBE_MULTI, link_uprobe_multi
from sysweave.agents.bpf.uprobes_spec import Probe
from sysweave.agents.preconditions import BPFFS, mount_bpffs

__all__ = ["CORE_PARAMS", "MAPS", "LoadedUprobes", "UprobeConfig", "bpf_source", "load", "loader"]

# What uprobes.bpf.o is built with (build.py): default map sizes, each set per run at load.
CORE_PARAMS = {"MAX_PROBES": 256, "MAX_AGG": 16384, "RINGBUF_PAGES": 256}
MAPS = ("thresholds", "probes", "lost", "aggs", "events")  # the ones user space touches
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


@dataclass
class LoadedUprobes:
    """A loaded, attached instance: its maps by name, how it was loaded, and how to detach and free it."""

    maps: dict[str, BpfMap]
    origin: str  # "libbpf" | "compiled"
    close: Callable[[], None]


def load(probes: Sequence[Probe], targets: BpfMap, settings: BpfMap, config: UprobeConfig) -> LoadedUprobes:
    """Load the program the way this host allows and attach an entry and a return probe per function."""
    kind, why = loader()
    if kind == "libbpf":
        return _load_core(probes, targets, settings, config)
    if why:
        sys.stderr.write(f"sysweave: compiling the function-probe program with bcc at run time (seconds): {why}\n")
    return _load_bcc(probes, targets, settings, config)


def _load_core(probes: Sequence[Probe], targets: BpfMap, settings: BpfMap, config: UprobeConfig) -> LoadedUprobes:
    """uprobe_multi links where the kernel has them (6.6+), else (loaded again) a perf-event uprobe per function."""
    loaded = _open_core(probes, targets, settings, config, multi=True) if config.attach != "each" else None
    if loaded is None and config.attach == "multi":
        raise BpfUnavailable("this kernel has no uprobe_multi links (6.6+)")
    return loaded or _open_core(probes, targets, settings, config, multi=False)  # type: ignore[return-value]


def _open_core(probes: Sequence[Probe], targets: BpfMap, settings: BpfMap, config: UprobeConfig,
               multi: bool) -> LoadedUprobes | None:
    """The object loaded with one pair of programs and attached; None when ``multi`` and the kernel has no
    uprobe_multi links (nothing is left attached or loaded then)."""
    obj = CoreObject("uprobes")
    links: list[int] = []

    def close() -> None:
        # a multi link detaches all of its uprobes after one grace period; the links' waits overlap in threads
        closers = [threading.Thread(target=os.close, args=(fd,)) for fd in links]
        for t in closers:
            t.start()
        for t in closers:
            t.join()
        links.clear()
        obj.close()

    try:
        obj.reuse_map("targets", targets.fd)
        obj.reuse_map("sys_config", settings.fd)
        obj.set_rodata(config.core_rodata(targets.max_entries))
        obj.set_max_entries("probes", max(1, max((p.id for p in probes), default=0) + 1))
        obj.set_max_entries("aggs", config.max_agg)
        obj.set_max_entries("events", config.ringbuf_pages * 4096)
        obj.only_programs(lambda name: (name in _MULTI) == multi)
        if multi:
            for prog in _MULTI:
                obj.set_expected_attach_type(prog, BPF_TRACE_UPROBE_MULTI)
        obj.load()
        maps = {n: BpfMap(obj.map_fd(n), n, owned=False) for n in MAPS}
        _write_probes(maps["probes"], probes)  # before attaching: a call must find its probe's settings
        sites = [(p, file_offset(p.library, p.address)) for p in probes]
        if multi and not _attach_multi(obj, sites, links):
            close()
            return None
        for p, offset in sites if not multi else ():
            for prog, ret in (("up_entry", False), ("up_return", True)):
                obj.attach_uprobe(prog, p.library, offset, p.id, retprobe=ret)
    except (ObjectError, ElfError) as exc:
        close()
        where = f" ({exc})" if isinstance(exc, ElfError) else f": {exc}"
        raise BpfUnavailable(f"the function-probe object failed to load or attach{where}") from exc
    return LoadedUprobes(maps, "libbpf", close)


_MULTI = ("up_entry_multi", "up_return_multi")
_NO_MULTI = (errno.EINVAL, errno.EOPNOTSUPP, errno.ENOSYS)  # what a kernel without uprobe_multi links answers


def _attach_multi(obj: CoreObject, sites: Sequence[tuple[Probe, int]], links: list[int]) -> bool:
    """One uprobe_multi link per library and direction; False (nothing attached yet) where the kernel has
    none (before 6.6): the caller loads the per-function pair instead."""
    by_lib: dict[str, list[tuple[int, int]]] = {}
    for p, offset in sites:
        by_lib.setdefault(p.library, []).append((offset, p.id))
    for i, (lib, at) in enumerate(by_lib.items()):
        for prog, ret in zip(_MULTI, (False, True)):
            fd = link_uprobe_multi(obj.program_fd(prog), lib, [o for o, _ in at], [c for _, c in at], ret)
            if fd < 0 and not (i or ret) and -fd in _NO_MULTI:
                return False
            if fd < 0:
                raise ObjectError(f"uprobe_multi link on {lib} ({len(at)} functions): {os.strerror(-fd)}")
            links.append(fd)
    return True


def _write_probes(table: BpfMap, probes: Sequence[Probe]) -> None:
    for p in probes:
        table.update(struct.pack("<I", p.id), struct.pack("<4I", p.cls, p.flags, p.str_arg, p.deref_arg))


def _ensure_bpffs() -> None:
    why = mount_bpffs()
    if why:
        raise BpfUnavailable(f"the bcc fallback of function probes needs bpffs at {BPFFS} ({why}); "
                             f"fix: mount -t bpf bpf {BPFFS}")


def _load_bcc(probes: Sequence[Probe], targets: BpfMap, settings: BpfMap, config: UprobeConfig) -> LoadedUprobes:
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
