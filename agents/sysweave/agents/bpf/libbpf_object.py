"""BPF objects built ahead of time (CO-RE), opened and loaded through libbpf at run time.

infra/build-bpf.sh compiles each program (``NAME.bpf.c`` with ``-DSYSWEAVE_CORE``) against the build
host's BTF into ``NAME.bpf.o`` beside its source; wheels and images ship the object.  CO-RE makes one
object portable: libbpf relocates its kernel-structure reads against the running kernel's BTF
(/sys/kernel/btf/vmlinux) when it loads it, so the node needs neither clang nor kernel headers, and start-up
is open + relocate + verify (tens of ms) instead of a compile (seconds).  Where the kernel has no BTF, or
the object was not built, the loaders fall back to bcc's run-time compile and say why (``core_unavailable``).

libbpf is Debian's libbpf.so.1 (1.1), reached through ctypes; its log (the verifier's, on a failed load) is
captured and put in the error instead of being printed.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Callable
from functools import cache
from typing import Any

from sysweave.agents.bpf.errors import ObjectError
from sysweave.agents.preconditions import CORE_OBJECT_DIR, VMLINUX_BTF, core_object_problem

__all__ = ["LOADER_ENV", "VMLINUX_BTF", "CoreObject", "core_unavailable", "loader_choice", "object_path"]

# Which loader capture uses: "auto" (libbpf where it can, else bcc, saying why), "libbpf" (never bcc: an
# error where it cannot), "bcc" (the run-time compile; what the kernels without BTF get).
LOADER_ENV = "SYSWEAVE_BPF_LOADER"
_PRINT_CB = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_void_p)
_LOG: list[str] = []
_LOG_KEPT = 200
_KEEP: list[Any] = []


def object_path(name: str) -> str:
    """Where NAME.bpf.o lives: beside its source (an installed package is a real directory)."""
    return os.path.join(CORE_OBJECT_DIR, f"{name}.bpf.o")


def core_unavailable(name: str) -> str | None:
    """Why the prebuilt object for NAME cannot be used here (None: it can)."""
    problem = core_object_problem(name)
    if problem:
        return problem
    try:
        _libbpf()
    except OSError as exc:
        return f"libbpf.so.1 cannot be loaded ({exc}; apt-get install libbpf1)"
    return None


def loader_choice(name: str) -> tuple[str, str | None]:
    """("libbpf" | "bcc", why bcc when it is the fallback).  Raises ObjectError when SYSWEAVE_BPF_LOADER
    asks for libbpf and it cannot be used, or names no loader."""
    wanted = os.environ.get(LOADER_ENV, "auto")
    if wanted == "bcc":
        return "bcc", None
    if wanted not in ("auto", "libbpf"):
        raise ObjectError(f"{LOADER_ENV}={wanted!r}: expected auto, libbpf or bcc")
    reason = core_unavailable(name)
    if reason is None:
        return "libbpf", None
    if wanted == "libbpf":
        raise ObjectError(f"{LOADER_ENV}=libbpf but {reason}")
    return "bcc", reason


@cache
def _libbpf() -> Any:
    lib = ctypes.CDLL("libbpf.so.1", use_errno=True)
    vp, cp, i, u32, sz = ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int, ctypes.c_uint32, ctypes.c_size_t
    sigs: dict[str, tuple[Any, list[Any]]] = {
        "bpf_object__open_file": (vp, [cp, vp]),
        "bpf_object__load": (i, [vp]),
        "bpf_object__close": (None, [vp]),
        "bpf_object__find_map_by_name": (vp, [vp, cp]),
        "bpf_object__find_program_by_name": (vp, [vp, cp]),
        "bpf_object__next_map": (vp, [vp, vp]),
        "bpf_object__next_program": (vp, [vp, vp]),
        "bpf_map__name": (cp, [vp]),
        "bpf_map__fd": (i, [vp]),
        "bpf_map__set_max_entries": (i, [vp, u32]),
        "bpf_map__set_initial_value": (i, [vp, vp, sz]),
        "bpf_map__reuse_fd": (i, [vp, i]),
        "bpf_program__name": (cp, [vp]),
        "bpf_program__fd": (i, [vp]),
        "bpf_program__set_autoload": (i, [vp, ctypes.c_bool]),
        "bpf_program__set_expected_attach_type": (i, [vp, ctypes.c_int]),
        "bpf_program__attach": (vp, [vp]),
        "bpf_program__attach_uprobe_opts": (vp, [vp, i, cp, sz, vp]),
        "bpf_program__attach_usdt": (vp, [vp, i, cp, cp, cp, vp]),
        "bpf_link__destroy": (i, [vp]),
        "libbpf_set_print": (vp, [_PRINT_CB]),
    }
    for fname, (res, args) in sigs.items():
        fn = getattr(lib, fname)
        fn.restype, fn.argtypes = res, args
    libc = ctypes.CDLL(None)
    libc.vsnprintf.restype = ctypes.c_int
    libc.vsnprintf.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_char_p, ctypes.c_void_p]
    buf = ctypes.create_string_buffer(1 << 21)  # a verifier log arrives as one message; its end says why

    def log(_level: int, fmt: bytes, args: int) -> int:
        libc.vsnprintf(buf, len(buf), fmt, args)  # va_list is a pointer on x86-64
        _LOG.append(buf.value[-3000:].decode(errors="replace"))
        del _LOG[:-_LOG_KEPT]
        return 0

    _KEEP.append(_PRINT_CB(log))  # libbpf holds the pointer for the life of the process
    lib.libbpf_set_print(_KEEP[-1])
    return lib


class _UprobeOpts(ctypes.Structure):
    """libbpf 1.1's struct bpf_uprobe_opts (sz first: newer libbpfs accept the smaller struct)."""

    _fields_ = [("sz", ctypes.c_size_t), ("ref_ctr_offset", ctypes.c_size_t), ("bpf_cookie", ctypes.c_uint64),
                ("retprobe", ctypes.c_bool), ("func_name", ctypes.c_char_p)]


class _UsdtOpts(ctypes.Structure):
    """libbpf 1.1's struct bpf_usdt_opts."""

    _fields_ = [("sz", ctypes.c_size_t), ("usdt_cookie", ctypes.c_uint64)]


def _fail(what: str) -> ObjectError:
    err = ctypes.get_errno()
    tail = "".join(_LOG[-12:]).strip()
    return ObjectError(f"{what}: {os.strerror(err) if err else 'failed'}" + (f"\n{tail}" if tail else ""))


class CoreObject:
    """One opened object: set sizes and read-only globals, reuse maps, then load(); maps/programs by name."""

    def __init__(self, name: str) -> None:
        self.name = name
        ctypes.set_errno(0)
        _LOG.clear()
        self._obj = _libbpf().bpf_object__open_file(object_path(name).encode(), None)
        if not self._obj:
            raise _fail(f"open {object_path(name)}")
        self.loaded = False
        self._links: list[Any] = []

    def _map(self, name: str) -> Any:
        m = _libbpf().bpf_object__find_map_by_name(self._obj, name.encode())
        if not m:
            raise ObjectError(f"{self.name}.bpf.o has no map {name!r} (rebuild it: bash infra/build-bpf.sh)")
        return m

    def _prog(self, name: str) -> Any:
        p = _libbpf().bpf_object__find_program_by_name(self._obj, name.encode())
        if not p:
            raise ObjectError(f"{self.name}.bpf.o has no program {name!r} (rebuild it: bash infra/build-bpf.sh)")
        return p

    def set_max_entries(self, map_name: str, n: int) -> None:
        if _libbpf().bpf_map__set_max_entries(self._map(map_name), n) != 0:
            raise _fail(f"{self.name}: size map {map_name} to {n}")

    def set_rodata(self, data: bytes) -> None:
        """The object's read-only globals (.rodata) as one blob, before load (the verifier sees constants)."""
        m = self._section_map(".rodata")
        if _libbpf().bpf_map__set_initial_value(m, data, len(data)) != 0:
            raise _fail(f"{self.name}: set .rodata ({len(data)} bytes)")

    def _section_map(self, suffix: str) -> Any:
        lib, m = _libbpf(), None
        while True:
            m = lib.bpf_object__next_map(self._obj, m)
            if not m:
                raise ObjectError(f"{self.name}.bpf.o has no {suffix} section")
            if (lib.bpf_map__name(m) or b"").decode().endswith(suffix):
                return m

    def reuse_map(self, map_name: str, fd: int) -> None:
        """Use an existing map (another loaded object's) instead of creating this one."""
        if _libbpf().bpf_map__reuse_fd(self._map(map_name), fd) != 0:
            raise _fail(f"{self.name}: reuse map {map_name}")

    def only_programs(self, keep: Callable[[str], bool]) -> None:
        """Load only the programs ``keep`` accepts (the others are not verified)."""
        lib, p = _libbpf(), None
        while True:
            p = lib.bpf_object__next_program(self._obj, p)
            if not p:
                return
            lib.bpf_program__set_autoload(p, keep((lib.bpf_program__name(p) or b"").decode()))

    def set_expected_attach_type(self, prog_name: str, attach_type: int) -> None:
        """Before load: the attach type the kernel verifies the program for (one libbpf 1.1 has no section for)."""
        if _libbpf().bpf_program__set_expected_attach_type(self._prog(prog_name), attach_type) != 0:
            raise _fail(f"{self.name}: set the attach type of {prog_name}")

    def load(self) -> None:
        ctypes.set_errno(0)
        _LOG.clear()
        if _libbpf().bpf_object__load(self._obj) != 0:
            raise _fail(f"load {self.name}.bpf.o")
        self.loaded = True

    def map_fd(self, name: str) -> int:
        return int(_libbpf().bpf_map__fd(self._map(name)))

    def program_fd(self, name: str) -> int:
        return int(_libbpf().bpf_program__fd(self._prog(name)))

    def attach(self, prog_name: str) -> None:
        """Attach a loaded program where its section says (raw_tp/NAME, tp_btf/NAME); detached at close()."""
        ctypes.set_errno(0)
        link = _libbpf().bpf_program__attach(self._prog(prog_name))
        if not link:
            raise _fail(f"{self.name}: attach {prog_name}")
        self._links.append(link)

    def attach_uprobe(self, prog_name: str, path: str, offset: int, cookie: int, retprobe: bool = False,
                      pid: int = -1) -> None:
        """Attach a loaded uprobe program at file offset ``offset`` of ``path`` (every process, or ``pid``);
        the program reads ``cookie`` with bpf_get_attach_cookie().  Detached at close()."""
        opts = _UprobeOpts(sz=ctypes.sizeof(_UprobeOpts), bpf_cookie=cookie, retprobe=retprobe)
        ctypes.set_errno(0)
        _LOG.clear()
        link = _libbpf().bpf_program__attach_uprobe_opts(self._prog(prog_name), pid, path.encode(), offset,
                                                         ctypes.byref(opts))
        if not link:
            raise _fail(f"{self.name}: attach {prog_name} at {path}+{offset:#x}")
        self._links.append(link)

    def attach_usdt(self, prog_name: str, path: str, provider: str, name: str, cookie: int, pid: int = -1) -> None:
        """Attach a loaded ``SEC("usdt")`` program at every site of USDT probe provider:name of ``path`` (libbpf
        reads the note, sets up the argument specs and the semaphore); the program reads ``cookie`` with
        bpf_usdt_cookie().  Detached at close()."""
        opts = _UsdtOpts(sz=ctypes.sizeof(_UsdtOpts), usdt_cookie=cookie)
        ctypes.set_errno(0)
        _LOG.clear()
        link = _libbpf().bpf_program__attach_usdt(self._prog(prog_name), pid, path.encode(), provider.encode(),
                                                  name.encode(), ctypes.byref(opts))
        if not link:
            raise _fail(f"{self.name}: attach {prog_name} to USDT {provider}:{name} of {path}")
        self._links.append(link)

    def close(self) -> None:
        """Detaches what attach() attached and frees the object: its maps and programs close."""
        for link in reversed(self._links):
            _libbpf().bpf_link__destroy(link)
        self._links = []
        if self._obj:
            _libbpf().bpf_object__close(self._obj)
            self._obj = None
