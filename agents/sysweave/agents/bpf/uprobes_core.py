"""uprobes.bpf.o through libbpf: load with this run's settings, attach every probe, detach fast.

Attachment, where the kernel has uprobe_multi links (6.6+; uprobe_multi.py): per file, one link for the
functions' entries, one for their returns and one for the USDT sites, each uprobe carrying its probe id as
the BPF cookie and each USDT site its semaphore (``ref_ctr_offsets``).  One link detaches with one RCU grace
period where a uprobe per perf event waits ~0.1 s each, and needs only CAP_BPF + CAP_PERFMON (a perf-event
uprobe also wants CAP_SYS_ADMIN).  Elsewhere the object is loaded again with the per-function pair
(``bpf_program__attach_uprobe_opts``) and libbpf's USDT support (``bpf_program__attach_usdt``).
"""

from __future__ import annotations

import errno
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sysweave.agents.bpf.elf_symbols import ElfError, file_offset, usdt_sites
from sysweave.agents.bpf.libbpf_object import CoreObject
from sysweave.agents.bpf.objects import BpfMap, ObjectError
from sysweave.agents.bpf.syscalls import BpfUnavailable
from sysweave.agents.bpf.uprobe_multi import BPF_TRACE_UPROBE_MULTI, link_uprobe_multi
from sysweave.agents.bpf.uprobes_spec import Probe

__all__ = ["MAPS", "CoreSettings", "LoadedUprobes", "load_core"]

MAPS = ("thresholds", "probes", "lost", "aggs", "events")  # the ones user space touches
_MULTI = ("up_entry_multi", "up_return_multi", "up_hit_multi")
_EACH = ("up_entry", "up_return", "up_usdt")
_NO_MULTI = (errno.EINVAL, errno.EOPNOTSUPP, errno.ENOSYS)  # what a kernel without uprobe_multi links answers


@dataclass
class LoadedUprobes:
    """A loaded, attached instance: its maps by name, how it was loaded, and how to detach and free it."""

    maps: dict[str, BpfMap]
    origin: str  # "libbpf" | "compiled"
    close: Callable[[], None]


@dataclass(frozen=True)
class CoreSettings:
    rodata: bytes  # uprobes.bpf.c `up_limits`
    max_agg: int
    ringbuf_bytes: int
    attach: str  # "auto" | "multi" | "each"


# A uprobe_multi link to make: (program, file, [(offset, cookie, semaphore offset)], on return)
_Link = tuple[str, str, list[tuple[int, int, int]], bool]


def load_core(probes: Sequence[Probe], targets: BpfMap, settings: BpfMap, cfg: CoreSettings) -> LoadedUprobes:
    """uprobe_multi links where the kernel has them, else (loaded again) a perf-event uprobe per site."""
    loaded = _open(probes, targets, settings, cfg, multi=True) if cfg.attach != "each" else None
    if loaded is None and cfg.attach == "multi":
        raise BpfUnavailable("this kernel has no uprobe_multi links (6.6+)")
    return loaded or _open(probes, targets, settings, cfg, multi=False)  # type: ignore[return-value]


def _open(probes: Sequence[Probe], targets: BpfMap, settings: BpfMap, cfg: CoreSettings,
          multi: bool) -> LoadedUprobes | None:
    """The object loaded with the programs of one attach mode and attached; None when ``multi`` and the
    kernel has no uprobe_multi links (then nothing is left attached or loaded)."""
    obj = CoreObject("uprobes")
    links: list[int] = []

    def close() -> None:
        # a multi link detaches its uprobes after one grace period; the links' waits overlap in threads
        closers = [threading.Thread(target=os.close, args=(fd,)) for fd in links]
        for t in closers:
            t.start()
        for t in closers:
            t.join()
        links.clear()
        obj.close()

    try:
        _prepare(obj, probes, targets, settings, cfg, multi)
        obj.load()
        maps = {n: BpfMap(obj.map_fd(n), n, owned=False) for n in MAPS}
        _write_probes(maps["probes"], probes)  # before attaching: a call must find its probe's settings
        if multi and not _link_all(obj, _multi_links(probes), links):
            close()
            return None
        if not multi:
            _attach_each(obj, probes)
    except (ObjectError, ElfError) as exc:
        close()
        where = f" ({exc})" if isinstance(exc, ElfError) else f": {exc}"
        raise BpfUnavailable(f"the function-probe object failed to load or attach{where}") from exc
    return LoadedUprobes(maps, "libbpf", close)


def _prepare(obj: CoreObject, probes: Sequence[Probe], targets: BpfMap, settings: BpfMap, cfg: CoreSettings,
             multi: bool) -> None:
    """Before load: the shared maps, this run's sizes and limits, the programs of the attach mode."""
    obj.reuse_map("targets", targets.fd)
    obj.reuse_map("sys_config", settings.fd)
    obj.set_rodata(cfg.rodata)
    obj.set_max_entries("probes", max(1, max((p.id for p in probes), default=0) + 1))
    obj.set_max_entries("aggs", cfg.max_agg)
    obj.set_max_entries("events", cfg.ringbuf_bytes)
    usdt = any(p.role == "usdt" for p in probes)
    wanted = {n for n in (_MULTI if multi else _EACH) if usdt or n not in ("up_hit_multi", "up_usdt")}
    obj.only_programs(lambda name: name in wanted)
    for prog in wanted if multi else ():
        obj.set_expected_attach_type(prog, BPF_TRACE_UPROBE_MULTI)


def _write_probes(table: BpfMap, probes: Sequence[Probe]) -> None:
    for p in probes:
        table.update(p.id.to_bytes(4, "little"),
                     b"".join(v.to_bytes(4, "little") for v in (p.cls, p.flags, p.str_arg, p.deref_arg)))


def _multi_links(probes: Sequence[Probe]) -> list[_Link]:
    """The links to make: per file, the functions' entries and returns, and the USDT sites."""
    funcs: dict[str, list[tuple[int, int, int]]] = {}
    hits: dict[str, list[tuple[int, int, int]]] = {}
    for p in probes:
        if p.role == "usdt":
            provider, _, name = p.symbol.partition(":")
            hits.setdefault(p.library, []).extend((at, p.id, sem) for at, sem in usdt_sites(p.library, provider, name))
        else:
            funcs.setdefault(p.library, []).append((file_offset(p.library, p.address), p.id, 0))
    out: list[_Link] = []
    for lib, sites in funcs.items():
        out += [("up_entry_multi", lib, sites, False), ("up_return_multi", lib, sites, True)]
    return out + [("up_hit_multi", lib, sites, False) for lib, sites in hits.items()]


def _link_all(obj: CoreObject, todo: list[_Link], links: list[int]) -> bool:
    """Make the links; False (nothing made) when the first one finds no uprobe_multi support."""
    for i, (prog, lib, sites, ret) in enumerate(todo):
        fd = link_uprobe_multi(obj.program_fd(prog), lib, [s[0] for s in sites], [s[1] for s in sites], ret,
                               [s[2] for s in sites])
        if fd < 0 and i == 0 and -fd in _NO_MULTI:
            return False
        if fd < 0:
            raise ObjectError(f"uprobe_multi link on {lib} ({len(sites)} sites): {os.strerror(-fd)}")
        links.append(fd)
    return True


def _attach_each(obj: CoreObject, probes: Sequence[Probe]) -> None:
    """A perf-event uprobe per function entry and return (kernels before 6.6); USDT through libbpf."""
    for p in probes:
        if p.role == "usdt":
            provider, _, name = p.symbol.partition(":")
            obj.attach_usdt("up_usdt", p.library, provider, name, p.id)
            continue
        offset = file_offset(p.library, p.address)
        for prog, ret in (("up_entry", False), ("up_return", True)):
            obj.attach_uprobe(prog, p.library, offset, p.id, retprobe=ret)
