"""uprobe_multi links (kernel 6.6+): many uprobes of one file in one BPF link, through the bpf() syscall.

Debian 12's libbpf (1.1) predates them (``bpf_program__attach_uprobe_multi`` is libbpf 1.3), so the link is
created here with ``BPF_LINK_CREATE`` directly.  Why they matter: detaching a uprobe waits for an RCU grace
period, ~0.1 s per uprobe on this 2-vCPU VM, so a run with 13 probed functions (26 uprobes, one perf event
each) spent 3 s in close(); a multi link detaches all of its uprobes with one wait.  The program must be
loaded with expected_attach_type ``BPF_TRACE_UPROBE_MULTI`` (CoreObject.set_expected_attach_type).
"""

from __future__ import annotations

import ctypes
from collections.abc import Sequence

__all__ = ["BPF_TRACE_UPROBE_MULTI", "link_uprobe_multi"]

# uapi/linux/bpf.h (6.6+): enum bpf_attach_type, bpf_cmd, the uprobe_multi link flag; x86-64 syscall number
BPF_TRACE_UPROBE_MULTI = 48
_BPF_LINK_CREATE = 28
_BPF_F_UPROBE_MULTI_RETURN = 1
_NR_BPF = 321


class _UprobeMultiAttr(ctypes.Structure):
    """union bpf_attr's link_create member with its uprobe_multi part (the rest of the union zero)."""

    _fields_ = [("prog_fd", ctypes.c_uint32), ("target_fd", ctypes.c_uint32), ("attach_type", ctypes.c_uint32),
                ("flags", ctypes.c_uint32), ("path", ctypes.c_uint64), ("offsets", ctypes.c_uint64),
                ("ref_ctr_offsets", ctypes.c_uint64), ("cookies", ctypes.c_uint64), ("cnt", ctypes.c_uint32),
                ("multi_flags", ctypes.c_uint32), ("pid", ctypes.c_uint32), ("_pad", ctypes.c_uint32)]


def link_uprobe_multi(prog_fd: int, path: str, offsets: Sequence[int], cookies: Sequence[int], retprobe: bool,
                      ref_ctr_offsets: Sequence[int] = (), pid: int = 0) -> int:
    """A link fd attaching ``prog_fd`` at each file offset of ``path`` (cookie i and the USDT semaphore at file
    offset ``ref_ctr_offsets[i]``, 0: none, at offset i); every process, or ``pid``.  Closing the fd detaches
    them all.  On failure, minus the kernel's errno."""
    n = len(offsets)
    offs = (ctypes.c_uint64 * n)(*offsets)
    cooks = (ctypes.c_uint64 * n)(*cookies)
    refs = (ctypes.c_uint64 * n)(*ref_ctr_offsets) if any(ref_ctr_offsets) else None
    cpath = ctypes.create_string_buffer(path.encode())
    attr = _UprobeMultiAttr(prog_fd=prog_fd, attach_type=BPF_TRACE_UPROBE_MULTI,
                            path=ctypes.addressof(cpath), offsets=ctypes.addressof(offs),
                            cookies=ctypes.addressof(cooks), cnt=n,
                            ref_ctr_offsets=ctypes.addressof(refs) if refs is not None else 0,
                            multi_flags=_BPF_F_UPROBE_MULTI_RETURN if retprobe else 0, pid=max(pid, 0))
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    fd = libc.syscall(ctypes.c_long(_NR_BPF), ctypes.c_int(_BPF_LINK_CREATE), ctypes.byref(attr),
                      ctypes.c_uint(ctypes.sizeof(attr)))
    return int(fd) if fd >= 0 else -(ctypes.get_errno() or 1)
