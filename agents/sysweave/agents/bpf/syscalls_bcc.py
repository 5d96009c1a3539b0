"""syscalls.bpf.c through bcc, the fallback loader (syscalls.py uses it where the CO-RE object cannot load):
compiled at run time, or reused from the instance an earlier compile left pinned in bpffs (objects.PinCache).

A failure raises ObjectError with the reason; SyscallProbe reports it as BpfUnavailable.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sysweave.agents.bpf.capture_setup import ProbeConfig, bpf_source
from sysweave.agents.bpf.contract import header_text
from sysweave.agents.bpf.objects import Attachments, BpfMap, ObjectError, PinCache, libbpf, tracepoint_link

__all__ = ["PROGRAMS", "RAW_PROGRAMS", "SCHED_PROGRAMS", "BccLoad", "cache_key", "load_bcc", "pin_sched_links"]

log = logging.getLogger("sysweave.capture")
# Programs of syscalls.bpf.c as bcc names them, and where each attaches.  A cached instance attaches the
# raw syscall tracepoints per run (every syscall on the host pays for them while attached; detaching is
# instant) and keeps the sched hooks attached through pinned links: they fire on fork/exec/exit only, do
# nothing for untargeted processes, and detaching them costs ~60 ms each (RCU grace periods).
RAW_PROGRAMS = {"raw_tracepoint__sys_enter": "sys_enter", "raw_tracepoint__sys_exit": "sys_exit"}
SCHED_PROGRAMS = {f"tracepoint__sched__{e}": e for e in ("sched_process_fork", "sched_process_exec", "sched_process_exit")}
# bcc only (the CO-RE object reads the exit status from the task): the signal a process dies of
SCHED_PROGRAMS.update({f"tracepoint__signal__{e}": e for e in ("signal_generate", "signal_deliver")})
PROGRAMS = [*RAW_PROGRAMS, *SCHED_PROGRAMS]


@dataclass(slots=True)
class BccLoad:
    """A loaded bcc instance: how (``origin``: "compiled" or "cache"), its maps, bcc's BPF object (compiled
    here only; None for a cached instance) and the pin cache entry it holds (None: a private instance)."""

    origin: str
    maps: dict[str, BpfMap]
    bpf: Any = None
    cache: PinCache | None = None


def cache_key(config: ProbeConfig) -> list[str]:
    """What a pinned instance must match: program, header, cflags, kernel, and the bcc that compiled it."""
    return [bpf_source(), header_text(), *config.cflags(), os.uname().release, os.uname().version, _libbcc_id()]


def _libbcc_id() -> str:
    # the library's size and mtime, not importlib.metadata (20 ms; Debian's python3-bpfcc may have none)
    for d in ("/usr/lib/x86_64-linux-gnu", "/lib/x86_64-linux-gnu", "/usr/lib64", "/usr/lib"):
        try:
            st = os.stat(f"{d}/libbcc.so.0")
            return f"{st.st_size}:{int(st.st_mtime)}"
        except OSError:
            continue
    return "unknown"


def load_bcc(config: ProbeConfig, cache: bool, maps: Sequence[str], attached: Attachments) -> BccLoad:
    """syscalls.bpf.c compiled by bcc, or the pinned instance an earlier compile left, its raw tracepoints
    attached through ``attached``; ``maps``: the maps user space touches."""
    pin_cache = None
    if cache and PinCache.enabled():
        pin_cache = PinCache(cache_key(config))
        if not pin_cache.acquire():
            pin_cache = None  # other runs hold every instance: compile our own, and say why it is slow
            log.warning("sysweave: every cached instance of the BPF program is in use by another run: "
                        "compiling a private one (~2-3 s)")
        else:
            fds = pin_cache.open(list(maps), list(RAW_PROGRAMS), [f"link_{n}" for n in SCHED_PROGRAMS])
            if fds:
                return _attach_cached(fds, pin_cache, attached)
    return _compile(config, maps, pin_cache)


def _attach_cached(fds: tuple[dict[str, int], dict[str, int]], cache: PinCache, attached: Attachments) -> BccLoad:
    map_fds, prog_fds = fds
    maps = {n: BpfMap(fd, n, owned=True) for n, fd in map_fds.items()}
    try:
        for name, where in RAW_PROGRAMS.items():
            attached.raw_tracepoint(prog_fds[name], where)
    except ObjectError as exc:
        attached.close()
        raise ObjectError(f"could not attach the cached BPF program: {exc}") from exc
    finally:
        for fd in prog_fds.values():
            os.close(fd)  # attached programs stay alive through their links
    return BccLoad("cache", maps, cache=cache)


def _compile(config: ProbeConfig, maps: Sequence[str], cache: PinCache | None) -> BccLoad:
    from bcc import BPF

    try:
        bpf = BPF(text=bpf_source(), cflags=config.cflags())  # attaches the programs too
    except Exception as exc:  # bcc raises bare Exception for compile/load failures
        if cache:
            cache.release(clean=False)
        raise ObjectError(f"the BPF program failed to compile or load: {exc}") from exc
    loaded = BccLoad("compiled", {n: BpfMap(bpf[n.encode()].map_fd, n, owned=False) for n in maps}, bpf, cache)
    if cache:
        fds = {n: m.fd for n, m in loaded.maps.items()}
        fds.update({n: bpf.funcs[n.encode()].fd for n in PROGRAMS})
        cache.store(fds)  # the sched links are pinned at close, once bcc's own attachments are gone
    return loaded


def pin_sched_links(cache: PinCache) -> bool:
    """Attach the pinned sched programs through links and pin those (a compiled instance, at close)."""
    for name, event in SCHED_PROGRAMS.items():
        prog = libbpf().bpf_obj_get(f"{cache.dir}/{name}".encode())
        if prog < 0:
            return False
        try:
            link = tracepoint_link(prog, name.split("__")[1], event)  # tracepoint__CATEGORY__EVENT
        except ObjectError:
            return False
        finally:
            os.close(prog)
        try:
            if not cache.pin(f"link_{name}", link):
                return False
        finally:
            os.close(link)
    return True
