"""Loaded BPF objects by file descriptor, and a cache of loaded programs pinned in bpffs.

Compiling syscalls.bpf.c with bcc is ~90 % of ``sysweave trace``'s start-up (clang parses kernel headers
and generates code at every start; bcc cannot load a prebuilt object).  The kernel can keep what bcc
loaded, though: programs and maps pinned under ``/sys/fs/bpf/sysweave/<key>-<slot>`` outlive the process,
and a later run opens them by path and attaches them in milliseconds.  ``key`` hashes the program text,
its header, the cflags, the kernel and bcc: any change compiles afresh.  What stays attached between runs
is decided by the program's loader (syscalls.py: the raw syscall tracepoints are attached per run; the
rare sched hooks stay attached through pinned links, since detaching a classic tracepoint costs ~60 ms).

One run at a time uses an instance (an flock beside it); SLOTS instances per key let concurrent runs
start fast too, and a run that finds them all busy compiles its own.  A run that ends cleanly (its own
targets cleared, nothing lost from the ring buffer) marks the instance clean; one that does not (killed,
records lost) leaves it dirty and the next run discards it, so state left in the maps never leaks into
another run.  Pinned programs and maps vanish at reboot (bpffs is memory); ``SYSWEAVE_BPF_CACHE=0``
turns the cache off; ``forget()`` removes every instance.

Map and ring-buffer access goes through libbpf (ctypes) on plain fds, so the cached path does not import
bcc at all (~0.1 s).
"""

from __future__ import annotations

import ctypes
import fcntl
import hashlib
import os
import shutil
from collections.abc import Callable, Iterator
from functools import cache
from typing import Any

from sysweave.agents.bpf.errors import ObjectError as ObjectError  # re-exported: the loaders raise it
from sysweave.agents.preconditions import BPFFS, RUN_DIR, mounted

__all__ = ["Attachments", "BpfMap", "ObjectError", "PinCache", "RingBuffer", "forget", "libbpf", "tracepoint_link"]

PIN_ROOT = f"{BPFFS}/sysweave"
LOCK_ROOT = f"{RUN_DIR}/bpf"
SLOTS = 2  # instances per program and configuration: two runs at once both start fast; a third compiles
KEEP = 4  # instances kept in all: each holds its maps in kernel memory, ~33 MB for the default program on 2 CPUs
_PERCPU_TYPES = {5, 6, 10}  # BPF_MAP_TYPE_PERCPU_HASH, PERCPU_ARRAY, LRU_PERCPU_HASH
_SAMPLE_CB = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t)


@cache
def libbpf() -> Any:
    """libbpf 1.x (a dependency of Debian's bcc), with the signatures used here."""
    lib = ctypes.CDLL("libbpf.so.1", use_errno=True)
    c_int, c_void_p, c_char_p, c_u32p = ctypes.c_int, ctypes.c_void_p, ctypes.c_char_p, ctypes.POINTER(ctypes.c_uint32)
    sigs: dict[str, tuple[Any, list[Any]]] = {
        "bpf_obj_get": (c_int, [c_char_p]),
        "bpf_obj_pin": (c_int, [c_int, c_char_p]),
        "bpf_obj_get_info_by_fd": (c_int, [c_int, c_void_p, c_u32p]),
        "bpf_map_lookup_elem": (c_int, [c_int, c_void_p, c_void_p]),
        "bpf_map_update_elem": (c_int, [c_int, c_void_p, c_void_p, ctypes.c_uint64]),
        "bpf_map_delete_elem": (c_int, [c_int, c_void_p]),
        "bpf_map_get_next_key": (c_int, [c_int, c_void_p, c_void_p]),
        "bpf_raw_tracepoint_open": (c_int, [c_char_p, c_int]),
        "bpf_link_create": (c_int, [c_int, c_int, ctypes.c_uint, c_void_p]),
        "libbpf_num_possible_cpus": (c_int, []),
        "ring_buffer__new": (c_void_p, [c_int, _SAMPLE_CB, c_void_p, c_void_p]),
        "ring_buffer__consume": (c_int, [c_void_p]),
        "ring_buffer__free": (None, [c_void_p]),
    }
    for name, (res, args) in sigs.items():
        fn = getattr(lib, name)
        fn.restype, fn.argtypes = res, args
    return lib


def _fail(what: str, rc: int = -1) -> ObjectError:
    err = ctypes.get_errno() or (-rc if rc < -1 else 0)
    return ObjectError(f"{what}: {os.strerror(err) if err else 'failed'}")


class _MapInfo(ctypes.Structure):
    _fields_ = [("type", ctypes.c_uint32), ("id", ctypes.c_uint32), ("key_size", ctypes.c_uint32),
                ("value_size", ctypes.c_uint32), ("max_entries", ctypes.c_uint32), ("map_flags", ctypes.c_uint32),
                ("name", ctypes.c_char * 16), ("_rest", ctypes.c_uint8 * 64)]


class BpfMap:
    """A map by fd: keys and values as bytes (per-CPU maps: one value per possible CPU, each 8-aligned)."""

    def __init__(self, fd: int, name: str, owned: bool) -> None:
        info = _MapInfo()
        size = ctypes.c_uint32(ctypes.sizeof(info))
        if libbpf().bpf_obj_get_info_by_fd(fd, ctypes.byref(info), ctypes.byref(size)) != 0:
            raise _fail(f"map {name}: info")
        self.fd, self.name, self._owned = fd, name, owned
        self.type, self.key_size, self.value_size = info.type, info.key_size, info.value_size
        self.max_entries = info.max_entries
        self.ncpus = libbpf().libbpf_num_possible_cpus() if info.type in _PERCPU_TYPES else 1
        self.stride = (self.value_size + 7) // 8 * 8 if info.type in _PERCPU_TYPES else self.value_size
        self._vbuf = ctypes.create_string_buffer(self.stride * self.ncpus)
        self._kbuf = ctypes.create_string_buffer(self.key_size)

    def lookup(self, key: bytes) -> bytes | None:
        if libbpf().bpf_map_lookup_elem(self.fd, key, self._vbuf) != 0:
            return None
        return self._vbuf.raw

    def per_cpu(self, value: bytes) -> list[bytes]:
        return [value[i * self.stride:i * self.stride + self.value_size] for i in range(self.ncpus)]

    def update(self, key: bytes, value: bytes) -> None:
        if self.type in _PERCPU_TYPES and len(value) == self.value_size:  # the same value on every CPU
            value = b"".join(value.ljust(self.stride, b"\0") for _ in range(self.ncpus))
        if libbpf().bpf_map_update_elem(self.fd, key, value, 0) != 0:
            raise _fail(f"map {self.name}: update")

    def delete(self, key: bytes) -> None:
        libbpf().bpf_map_delete_elem(self.fd, key)

    def keys(self) -> Iterator[bytes]:
        prev: bytes | None = None
        while libbpf().bpf_map_get_next_key(self.fd, prev, self._kbuf) == 0:
            prev = self._kbuf.raw
            yield prev

    def clear(self) -> None:
        """Delete every key (hash maps; arrays cannot delete and are zeroed by the caller)."""
        for key in list(self.keys()):
            self.delete(key)

    @property
    def map_fd(self) -> int:  # the name bcc's tables use (callers that pin the map by fd)
        return self.fd

    def close(self) -> None:
        if self._owned:
            os.close(self.fd)
            self._owned = False


class RingBuffer:
    """libbpf's ring-buffer consumer on a map fd; ``callback(bytes)`` per record, from consume()."""

    def __init__(self, map_fd: int, callback: Callable[[bytes], None]) -> None:
        def sample(_ctx: Any, data: Any, size: int) -> int:
            callback(ctypes.string_at(data, size))
            return 0

        self._cb = _SAMPLE_CB(sample)  # kept: libbpf holds the pointer
        self._rb = libbpf().ring_buffer__new(map_fd, self._cb, None, None)
        if not self._rb:
            raise _fail("ring buffer")

    def consume(self) -> None:
        if self._rb:
            libbpf().ring_buffer__consume(self._rb)

    def close(self) -> None:
        if self._rb:
            libbpf().ring_buffer__free(self._rb)
            self._rb = None


class Attachments:
    """Programs attached by fd; closing the link/perf fds detaches them."""

    def __init__(self) -> None:
        self._fds: list[int] = []

    def raw_tracepoint(self, prog_fd: int, name: str) -> None:
        fd = libbpf().bpf_raw_tracepoint_open(name.encode(), prog_fd)
        if fd < 0:
            raise _fail(f"attach raw tracepoint {name}", fd)
        self._fds.append(fd)

    def close(self) -> None:
        for fd in self._fds:
            os.close(fd)
        self._fds = []


class _PerfEventAttr(ctypes.Structure):
    _fields_ = [("type", ctypes.c_uint32), ("size", ctypes.c_uint32), ("config", ctypes.c_uint64),
                ("sample_period", ctypes.c_uint64), ("_rest", ctypes.c_uint8 * 104)]


_PERF_TYPE_TRACEPOINT, _BPF_PERF_EVENT, _SYS_PERF_EVENT_OPEN, _PERF_FLAG_FD_CLOEXEC = 2, 41, 298, 8  # uapi (x86-64)


def tracepoint_link(prog_fd: int, category: str, name: str) -> int:
    """Attach a program to a classic tracepoint through a BPF link (pinnable: it outlives this process).

    Releasing a tracepoint's perf event waits for RCU grace periods, ~60 ms each here, where a raw
    tracepoint link detaches at once; pinned, the link is never released at the end of a run."""
    tp_id = -1
    for root in ("/sys/kernel/tracing", "/sys/kernel/debug/tracing"):
        try:
            with open(f"{root}/events/{category}/{name}/id") as f:
                tp_id = int(f.read())
            break
        except OSError:
            continue
    if tp_id < 0:
        raise ObjectError(f"tracepoint {category}:{name}: not found in tracefs")
    attr = _PerfEventAttr(type=_PERF_TYPE_TRACEPOINT, size=ctypes.sizeof(_PerfEventAttr), config=tp_id,
                          sample_period=1)
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    perf_fd = libc.syscall(_SYS_PERF_EVENT_OPEN, ctypes.byref(attr), -1, 0, -1, _PERF_FLAG_FD_CLOEXEC)
    if perf_fd < 0:
        raise _fail(f"perf_event_open {category}:{name}")
    try:
        link = libbpf().bpf_link_create(prog_fd, perf_fd, _BPF_PERF_EVENT, None)
        if link < 0:
            raise _fail(f"attach tracepoint {category}:{name}", link)
        return int(link)
    finally:
        os.close(perf_fd)  # the link holds the event


class PinCache:
    """Loaded instances of one program, pinned by content key; one user at a time per instance."""

    def __init__(self, key_material: list[str], slots: int = SLOTS) -> None:
        self.base = hashlib.sha256("\0".join(key_material).encode()).hexdigest()[:24]
        self.slots = slots
        self._use(0)
        self._lock_fd: int | None = None

    def _use(self, slot: int) -> None:
        self.key = f"{self.base}-{slot}"
        self.dir = f"{PIN_ROOT}/{self.key}"
        self._lock_path = f"{LOCK_ROOT}/{self.key}.lock"
        # a directory in bpffs beside the pins: it lives and dies with them (another mount namespace's bpffs,
        # a reboot), where a file under /run would vouch for pins it never saw
        self._clean_path = f"{self.dir}/clean"

    @staticmethod
    def wanted() -> bool:
        return os.environ.get("SYSWEAVE_BPF_CACHE", "1") != "0"

    @staticmethod
    def enabled() -> bool:
        """Wanted, and bpffs is mounted (preconditions.establish mounts it, or says why it cannot)."""
        return PinCache.wanted() and BPFFS in mounted("bpf")

    def acquire(self) -> bool:
        """Take a free instance slot for this run; False when other runs hold them all (compile privately)."""
        for slot in range(self.slots):
            self._use(slot)
            fd = _try_lock(self._lock_path)
            if fd is not None:
                os.utime(fd)  # recency, for pruning
                self._lock_fd = fd
                return True
        return False

    def open(self, maps: list[str], progs: list[str], links: list[str]) -> tuple[dict[str, int], dict[str, int]] | None:
        """The pinned fds, or None when the instance is missing, incomplete or was left dirty (discarded).
        ``links``: pinned attachments that must be there (they stay attached; nothing to open)."""
        if not os.path.exists(self._clean_path) or not all(os.path.exists(f"{self.dir}/{n}") for n in links):
            self.discard()
            return None
        os.rmdir(self._clean_path)  # dirty while in use: a run that dies leaves it so
        fds: dict[str, int] = {}
        for name in maps + progs:
            fd = libbpf().bpf_obj_get(f"{self.dir}/{name}".encode())
            if fd < 0:
                for other in fds.values():
                    os.close(other)
                self.discard()
                return None
            fds[name] = fd
        return {n: fds[n] for n in maps}, {n: fds[n] for n in progs}

    def store(self, fds: dict[str, int]) -> None:
        """Pin a freshly loaded instance (best effort: a failure only means the next run compiles)."""
        self.discard()
        try:
            os.makedirs(self.dir, exist_ok=True)
            for name, fd in fds.items():
                if libbpf().bpf_obj_pin(fd, f"{self.dir}/{name}".encode()) != 0:
                    raise OSError(ctypes.get_errno(), f"pin {name}")
        except OSError:
            self.discard()
        self._prune()

    def pin(self, name: str, fd: int) -> bool:
        return os.path.isdir(self.dir) and libbpf().bpf_obj_pin(fd, f"{self.dir}/{name}".encode()) == 0

    def release(self, clean: bool) -> None:
        if clean and os.path.isdir(self.dir):
            try:
                os.mkdir(self._clean_path)
            except FileExistsError:
                pass
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def discard(self) -> None:
        if os.path.exists(self._clean_path):
            os.rmdir(self._clean_path)
        # unlinking the pins frees what nobody holds; pinned links detach (~60 ms each: rare)
        shutil.rmtree(self.dir, ignore_errors=True)

    @staticmethod
    def _prune() -> None:
        """Keep the KEEP most recently used instances; never one another run holds."""
        try:
            names = sorted(os.listdir(PIN_ROOT), key=lambda n: _mtime(f"{LOCK_ROOT}/{n}.lock"), reverse=True)
        except OSError:
            return
        try:  # lock files of instances that are gone (pruned, discarded, never stored)
            names += sorted({f.rsplit(".", 1)[0] for f in os.listdir(LOCK_ROOT)} - set(names))
        except OSError:
            pass
        for name in names[KEEP:]:
            fd = _try_lock(f"{LOCK_ROOT}/{name}.lock")
            if fd is None:
                continue
            try:
                shutil.rmtree(f"{PIN_ROOT}/{name}", ignore_errors=True)
                for suffix in (".clean", ".lock"):
                    if os.path.exists(f"{LOCK_ROOT}/{name}{suffix}"):
                        os.unlink(f"{LOCK_ROOT}/{name}{suffix}")
            finally:
                os.close(fd)


def _try_lock(path: str) -> int | None:
    """An fd holding an exclusive flock on ``path`` (created if needed), or None if someone holds it."""
    try:
        os.makedirs(LOCK_ROOT, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd


def _mtime(path: str) -> float:
    try:
        return os.stat(path).st_mtime
    except OSError:
        return 0.0


def forget() -> None:
    """Remove every cached instance (``sysweave trace --forget-bpf-cache``, tests)."""
    shutil.rmtree(PIN_ROOT, ignore_errors=True)
    shutil.rmtree(LOCK_ROOT, ignore_errors=True)
