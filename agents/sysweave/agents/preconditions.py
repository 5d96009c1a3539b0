"""The host state capture relies on, checked in one place: bpffs, tracefs, kernel headers and BTF, privileges,
the locked-memory limit, cgroup v2 and ``/run/sysweave``.

Each ``check_*`` is a pure look at the host returning a :class:`Check` (name, ok, detail, the command that
fixes it, whether eBPF capture needs it at all).  ``sysweave doctor`` prints them; capture start-up calls
:func:`establish` first, which does what a privileged process can do itself -- mount bpffs and tracefs
where they are missing (as bpftool and systemd do), create ``/run/sysweave``, lift RLIMIT_MEMLOCK on
kernels that still charge BPF memory to it -- and reports, one line each, whatever is still missing with
the command that fixes it.  Nothing falls back silently: where capture compiles with bcc (the fallback
when the CO-RE object cannot load), without bpffs its loaded-program cache is off and every start compiles
(~3.5 s instead of ~0.3 s here), and the line says so.

``infra/setup.sh`` establishes the same state for the host (idempotently); both must agree with the
checks here.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import logging
import os
import resource
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass
from importlib.util import find_spec
from typing import Any

__all__ = [
    "BPFFS", "CORE_OBJECT_DIR", "REQUIRED_CAPABILITIES", "RUN_DIR", "TRACEFS", "VMLINUX_BTF", "Check",
    "capture_ready", "check_all", "check_bcc", "check_bpffs", "check_btf", "check_cgroup2", "check_core_object",
    "check_kernel_headers", "check_memlock", "check_privileges", "check_run_dir", "check_strace", "check_tracefs",
    "core_object_problem", "establish", "missing_capabilities", "mount_bpffs", "mount_tracefs", "mounted",
    "tracefs_root",
]

BPFFS = "/sys/fs/bpf"
TRACEFS = "/sys/kernel/tracing"
_TRACEFS_ROOTS = (TRACEFS, "/sys/kernel/debug/tracing")  # the second: kernels that expose it under debugfs only
RUN_DIR = "/run/sysweave"
# What capture needs without root, measured as a non-root user on kernel 6.18 (tests/cluster/test_capabilities.py):
# CAP_BPF (maps, programs), CAP_PERFMON (attach the tracepoints), CAP_DAC_READ_SEARCH (tracefs is 0700 root).
# The Helm chart grants exactly these. (Kernels before 5.11 also need CAP_SYS_RESOURCE for RLIMIT_MEMLOCK.)
REQUIRED_CAPABILITIES = (("CAP_BPF", 39), ("CAP_PERFMON", 38), ("CAP_DAC_READ_SEARCH", 2))
_CAP_SYS_ADMIN = 21  # mount(2)
_MEMCG_ACCOUNTING = (5, 11)  # from this kernel on, BPF memory is charged to the memory cgroup, not RLIMIT_MEMLOCK
log = logging.getLogger("sysweave.preconditions")
_reported: set[str] = set()  # what establish() already said in this process (said once, not per probe)


@dataclass(frozen=True, slots=True)
class Check:
    """One precondition. ``fix``: a shell command that establishes it ('' when ok or when nothing can).
    ``capture_needs``: eBPF capture cannot start without it; otherwise it is slower or narrower without."""

    name: str
    ok: bool
    detail: str
    fix: str = ""
    capture_needs: bool = True

    def line(self) -> str:
        """One line: what is wrong and the command that fixes it (the form capture start-up prints)."""
        return self.detail + (f"; fix: {self.fix}" if self.fix and not self.ok else "")

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def mounted(fstype: str, mounts_file: str = "/proc/self/mounts") -> list[str]:
    """Mount points of file systems of this type, as this process's mount namespace sees them."""
    try:
        with open(mounts_file) as f:
            return [parts[1] for parts in (line.split() for line in f) if len(parts) > 2 and parts[2] == fstype]
    except OSError:
        return []


def _cap_eff() -> int | None:
    try:
        with open("/proc/self/status") as f:
            return next(int(line.split()[1], 16) for line in f if line.startswith("CapEff:"))
    except (OSError, StopIteration, ValueError, IndexError):
        return None


def missing_capabilities() -> list[str]:
    """The REQUIRED_CAPABILITIES this process's effective set lacks (root normally has them all)."""
    eff = _cap_eff()
    if eff is None:
        return [] if os.geteuid() == 0 else [name for name, _ in REQUIRED_CAPABILITIES]
    return [name for name, bit in REQUIRED_CAPABILITIES if not eff >> bit & 1]


def _can_mount() -> bool:
    eff = _cap_eff()
    return bool(eff >> _CAP_SYS_ADMIN & 1) if eff is not None else os.geteuid() == 0


def _kernel() -> tuple[int, int]:
    try:
        major, minor = os.uname().release.split(".")[:2]
        return int(major), int("".join(c for c in minor if c.isdigit()) or 0)
    except ValueError:
        return 0, 0


# --- the checks (pure) -------------------------------------------------------------------------------

def check_privileges() -> Check:
    missing = missing_capabilities()
    needed = " + ".join(n for n, _ in REQUIRED_CAPABILITIES)
    if not missing:
        return Check("privileges", True, f"{'root' if os.geteuid() == 0 else 'capabilities'} ({needed})")
    return Check("privileges", False, f"eBPF capture needs root or {needed}; this process lacks {', '.join(missing)}",
                 "run as root (sudo sysweave ...) or grant the capabilities (setcap / the Helm chart's securityContext)")


VMLINUX_BTF = "/sys/kernel/btf/vmlinux"
CORE_OBJECT_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "bpf")  # NAME.bpf.o, beside NAME.bpf.c


def core_object_problem(name: str = "syscalls") -> str | None:
    """Why the prebuilt CO-RE object NAME.bpf.o cannot be loaded here (None: it can, libbpf permitting)."""
    if not os.path.exists(VMLINUX_BTF):
        return f"the kernel has no BTF ({VMLINUX_BTF}): CO-RE objects cannot be relocated"
    path = os.path.join(CORE_OBJECT_DIR, f"{name}.bpf.o")
    if not os.path.exists(path):
        return f"{path} was not built (run 'bash infra/build-bpf.sh' or 'make setup')"
    return None


def _core_unavailable() -> str | None:
    return core_object_problem("syscalls")


def check_core_object() -> Check:
    """The CO-RE object libbpf loads (built at setup; no compiler or headers on the node)."""
    why = _core_unavailable() or core_object_problem("uprobes")
    if why is None:
        return Check("core-object", True, "syscalls.bpf.o, uprobes.bpf.o + kernel BTF: libbpf loads them (no compile)")
    return Check("core-object", False, f"{why}; capture compiles with bcc at run time (seconds)",
                 "bash infra/build-bpf.sh" if "not built" in why else "", capture_needs=False)


def check_bcc() -> Check:
    # found, not imported: importing bcc costs ~0.1 s a cached start does not need
    if find_spec("bcc") is not None:
        return Check("bcc", True, "the bcc Python module is importable (compiles the BPF programs)")
    return Check("bcc", False, "the bcc Python module is not importable (Debian's python3-bpfcc): only the "
                 "fallback where the CO-RE object cannot load needs it", "make setup-core",
                 capture_needs=_core_unavailable() is not None)


def check_kernel_headers() -> Check:
    build = f"/lib/modules/{os.uname().release}/build"
    if os.path.exists(f"{build}/include"):
        return Check("kernel-headers", True, f"{os.path.realpath(build)} (bcc compiles against them)")
    return Check("kernel-headers", False, f"no kernel headers at {build} (only bcc, the fallback where the CO-RE "
                 "object cannot load, compiles against them)", "make setup-core",
                 capture_needs=_core_unavailable() is not None)


def check_btf() -> Check:
    """BTF: the kernel's own type information (CO-RE programs relocate against it); bcc does not need it."""
    if os.path.exists("/sys/kernel/btf/vmlinux"):
        return Check("btf", True, "/sys/kernel/btf/vmlinux", capture_needs=False)
    return Check("btf", False, "no /sys/kernel/btf/vmlinux (kernel built without CONFIG_DEBUG_INFO_BTF); "
                 "capture works through kernel headers", capture_needs=False)


def tracefs_root() -> str | None:
    """Where the tracepoint descriptions are (tracefs, or its copy under debugfs), or None."""
    return next((r for r in _TRACEFS_ROOTS if os.path.exists(f"{r}/events/raw_syscalls/sys_enter/format")), None)


def check_tracefs() -> Check:
    root = tracefs_root()
    if root:
        return Check("tracefs", True, f"{root} (tracepoint ids and record formats)")
    return Check("tracefs", False, f"tracefs is not mounted at {TRACEFS} (tracepoint ids and formats)",
                 f"mount -t tracefs tracefs {TRACEFS}")


def check_bpffs() -> Check:
    """bpffs: the bcc fallback keeps its loaded programs there (without it each bcc start compiles: seconds)
    and shares the syscall maps with its function probes (--uprobe, --gpu) through pins. The default CO-RE
    objects do not need it (libbpf reuses the maps by fd)."""
    core = _core_unavailable() is None
    uses = "not needed by the CO-RE objects" if core else "the bcc fallback's program cache and function probes"
    if BPFFS in mounted("bpf"):
        return Check("bpffs", True, f"{BPFFS} ({uses})", capture_needs=False)
    cost = ("only the bcc fallback would need it" if core else
            "the bcc fallback's program cache is off: every start compiles (seconds, ~10x slower); "
            "--uprobe/--gpu need it (capture mounts it when root)")
    return Check("bpffs", False, f"bpffs is not mounted at {BPFFS}: {cost}", f"mount -t bpf bpf {BPFFS}",
                 capture_needs=False)


def check_memlock() -> Check:
    soft, _ = resource.getrlimit(resource.RLIMIT_MEMLOCK)
    shown = "unlimited" if soft == resource.RLIM_INFINITY else f"{soft // 1024} KiB"
    if _kernel() >= _MEMCG_ACCOUNTING:
        return Check("memlock", True, f"RLIMIT_MEMLOCK {shown}: not used (kernel {os.uname().release} charges BPF "
                     "memory to the memory cgroup)")
    if soft == resource.RLIM_INFINITY:
        return Check("memlock", True, "RLIMIT_MEMLOCK unlimited")
    return Check("memlock", False, f"RLIMIT_MEMLOCK {shown}: kernels before 5.11 charge BPF maps to it "
                 "(~40 MB needed); capture lifts it when it holds CAP_SYS_RESOURCE",
                 "ulimit -l unlimited (or LimitMEMLOCK=infinity in the service unit)")


def check_cgroup2() -> Check:
    """cgroup v2: what ``sysweave agent --cgroup`` and the Helm chart's per-pod mode select processes by."""
    roots = mounted("cgroup2")
    if roots:
        hybrid = " (hybrid: v1 controllers at /sys/fs/cgroup)" if roots[0] != "/sys/fs/cgroup" else ""
        return Check("cgroup2", True, f"{roots[0]}{hybrid} (agent --cgroup)", capture_needs=False)
    v1 = bool(mounted("cgroup"))
    where = "/sys/fs/cgroup/unified" if v1 else "/sys/fs/cgroup"
    return Check("cgroup2", False, "no cgroup v2 hierarchy mounted: 'sysweave agent --cgroup' cannot select pods",
                 f"mkdir -p {where} && mount -t cgroup2 none {where}", capture_needs=False)


def check_run_dir() -> Check:
    """/run/sysweave: the program cache's locks (one run per cached instance). /run is memory: gone at boot."""
    if os.path.isdir(RUN_DIR):
        ok = os.access(RUN_DIR, os.W_OK)
        return Check("run-dir", ok, f"{RUN_DIR}" + ("" if ok else " is not writable (the cache's locks)"),
                     "" if ok else f"chown $(id -u) {RUN_DIR}", capture_needs=False)
    if os.access(os.path.dirname(RUN_DIR), os.W_OK):
        return Check("run-dir", True, f"{RUN_DIR} (created by the first capture)", capture_needs=False)
    return Check("run-dir", False, f"{RUN_DIR} is missing and cannot be created (the program cache's locks)",
                 f"sudo install -d -o $(id -u) {RUN_DIR}", capture_needs=False)


def check_strace() -> Check:
    if shutil.which("strace"):
        return Check("strace", True, "the ptrace fallback (sysweave trace --backend ptrace)", capture_needs=False)
    return Check("strace", False, "no strace: no ptrace fallback where eBPF cannot run", "apt-get install strace",
                 capture_needs=False)


CHECKS: tuple[Callable[[], Check], ...] = (
    check_privileges, check_core_object, check_bcc, check_kernel_headers, check_tracefs, check_bpffs, check_memlock,
    check_run_dir, check_btf, check_cgroup2, check_strace,
)


def check_all() -> list[Check]:
    return [check() for check in CHECKS]


def capture_ready(checks: list[Check]) -> bool:
    """Can eBPF capture start (perhaps slower, if only optional checks fail)?"""
    return all(c.ok for c in checks if c.capture_needs)


# --- establishing (the privileged part) ----------------------------------------------------------------

def _mount(source: str, target: str, fstype: str, options: str) -> int:
    """mount(2) directly (no mount(8) process: it is on capture's start-up path); 0 or the errno."""
    libc = ctypes.CDLL(None, use_errno=True)
    rc = libc.mount(source.encode(), target.encode(), fstype.encode(), ctypes.c_ulong(0), options.encode())
    return 0 if rc == 0 else ctypes.get_errno() or errno.EPERM


def mount_bpffs() -> str | None:
    """Mount bpffs at /sys/fs/bpf (mode 0700, as bpftool and systemd do) unless it is there; None or why not."""
    if BPFFS in mounted("bpf"):
        return None
    if not _can_mount():
        return "mounting needs root (CAP_SYS_ADMIN)"
    try:
        os.makedirs(BPFFS, exist_ok=True)
    except OSError as exc:
        return f"{BPFFS}: {exc.strerror}"
    # one mounter at a time: two runs starting together would stack two instances, the lower one unseen
    fd = os.open(BPFFS, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        if BPFFS in mounted("bpf"):
            return None
        err = _mount("bpf", BPFFS, "bpf", "mode=0700")
    finally:
        os.close(fd)
    return f"mount -t bpf: {os.strerror(err)}" if err else None


def mount_tracefs() -> str | None:
    if tracefs_root():
        return None
    if not _can_mount():
        return "mounting needs root (CAP_SYS_ADMIN)"
    err = _mount("tracefs", TRACEFS, "tracefs", "")
    return f"mount -t tracefs: {os.strerror(err)}" if err and not tracefs_root() else None


def _lift_memlock() -> None:
    if _kernel() < _MEMCG_ACCOUNTING:
        try:
            resource.setrlimit(resource.RLIMIT_MEMLOCK, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
        except (ValueError, OSError):
            pass  # check_memlock says so


def establish(cache: bool = True) -> list[Check]:
    """What capture start-up does first: establish what this process can, then report (once per process,
    one warning line each: ``sysweave: <what>; fix: <command>``) what is still missing.  ``cache``: the
    loaded-program cache is wanted (bpffs and /run/sysweave matter).  Returns the checks still failing."""
    mount_tracefs()
    _lift_memlock()
    checks = [check_tracefs(), check_memlock()]
    if cache:
        why = mount_bpffs()
        bpffs = check_bpffs()
        if why and not bpffs.ok:
            bpffs = Check(bpffs.name, False, f"{bpffs.detail} (could not mount it: {why})", bpffs.fix, False)
        try:
            os.makedirs(RUN_DIR, exist_ok=True)
        except OSError:
            pass
        checks += [bpffs, check_run_dir()]
    failing = [c for c in checks if not c.ok]
    for c in failing:
        if c.name not in _reported:
            _reported.add(c.name)
            log.warning("sysweave: %s", c.line())
    return failing
