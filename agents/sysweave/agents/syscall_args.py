"""What each syscall's arguments mean: names and kinds for decoding, strace's classes, the observable set.

Names come from the complete generated table (``sysweave.schemas.syscall_table_x86_64``); this module adds
meaning for the calls we decode. A call without a spec is shown with raw hex arguments, like strace does
for calls it does not know.

Argument kinds:
    fd, int (C int), long (64-bit offsets), hex, oflags, mode, size, ptr, sig, at (dirfd with AT_FDCWD),
    path / path2   -- the string the kernel program captured into d1 / d2
    buf            -- payload bytes captured into d2 (writes: what was written; reads: what was read)
    addr           -- a sockaddr captured into d1
    argv           -- exec argument vector (captured at sys_enter)
    wstatus        -- the int the kernel wrote at the pointer (wait4)
    fds            -- the two ints of pipe/socketpair
"""

from __future__ import annotations

from typing import Final

from sysweave.schemas.syscall_table_x86_64 import SYSCALL_NAMES_X86_64

__all__ = ["ARG_SPECS", "CLASSES", "NR_BY_NAME", "OBSERVABLE"]

NR_BY_NAME: Final[dict[str, int]] = {name: nr for nr, name in SYSCALL_NAMES_X86_64.items()}

_F = "fd"
ARG_SPECS: Final[dict[str, tuple[tuple[str, str], ...]]] = {
    "read": (("fd", _F), ("buf", "buf"), ("count", "size")),
    "write": (("fd", _F), ("buf", "buf"), ("count", "size")),
    "pread64": (("fd", _F), ("buf", "buf"), ("count", "size"), ("offset", "long")),
    "pwrite64": (("fd", _F), ("buf", "buf"), ("count", "size"), ("offset", "long")),
    "readv": (("fd", _F), ("iov", "buf"), ("iovcnt", "int")),
    "writev": (("fd", _F), ("iov", "buf"), ("iovcnt", "int")),
    "preadv": (("fd", _F), ("iov", "buf"), ("iovcnt", "int"), ("offset", "long")),
    "pwritev": (("fd", _F), ("iov", "buf"), ("iovcnt", "int"), ("offset", "long")),
    "preadv2": (("fd", _F), ("iov", "buf"), ("iovcnt", "int"), ("offset", "long"), ("flags", "hex")),
    "pwritev2": (("fd", _F), ("iov", "buf"), ("iovcnt", "int"), ("offset", "long"), ("flags", "hex")),
    "open": (("path", "path"), ("flags", "oflags"), ("mode", "mode")),
    "creat": (("path", "path"), ("mode", "mode")),
    "openat": (("dirfd", "at"), ("path", "path"), ("flags", "oflags"), ("mode", "mode")),
    "openat2": (("dirfd", "at"), ("path", "path"), ("how", "ptr"), ("size", "size")),
    "close": (("fd", _F),),
    "stat": (("path", "path"), ("statbuf", "ptr")),
    "lstat": (("path", "path"), ("statbuf", "ptr")),
    "fstat": (("fd", _F), ("statbuf", "ptr")),
    "newfstatat": (("dirfd", "at"), ("path", "path"), ("statbuf", "ptr"), ("flags", "hex")),
    "statx": (("dirfd", "at"), ("path", "path"), ("flags", "hex"), ("mask", "hex"), ("statxbuf", "ptr")),
    "access": (("path", "path"), ("mode", "int")),
    "faccessat": (("dirfd", "at"), ("path", "path"), ("mode", "int")),
    "faccessat2": (("dirfd", "at"), ("path", "path"), ("mode", "int"), ("flags", "hex")),
    "unlink": (("path", "path"),),
    "unlinkat": (("dirfd", "at"), ("path", "path"), ("flags", "hex")),
    "mkdir": (("path", "path"), ("mode", "mode")),
    "mkdirat": (("dirfd", "at"), ("path", "path"), ("mode", "mode")),
    "rmdir": (("path", "path"),),
    "rename": (("oldpath", "path"), ("newpath", "path2")),
    "renameat": (("olddirfd", "at"), ("oldpath", "path"), ("newdirfd", "at"), ("newpath", "path2")),
    "renameat2": (("olddirfd", "at"), ("oldpath", "path"), ("newdirfd", "at"), ("newpath", "path2"), ("flags", "hex")),
    "link": (("oldpath", "path"), ("newpath", "path2")),
    "linkat": (("olddirfd", "at"), ("oldpath", "path"), ("newdirfd", "at"), ("newpath", "path2"), ("flags", "hex")),
    "symlink": (("target", "path"), ("linkpath", "path2")),
    "symlinkat": (("target", "path"), ("newdirfd", "at"), ("linkpath", "path2")),
    "readlink": (("path", "path"), ("buf", "ptr"), ("bufsiz", "size")),
    "readlinkat": (("dirfd", "at"), ("path", "path"), ("buf", "ptr"), ("bufsiz", "size")),
    "chdir": (("path", "path"),),
    "fchdir": (("fd", _F),),
    "truncate": (("path", "path"), ("length", "long")),
    "ftruncate": (("fd", _F), ("length", "long")),
    "chmod": (("path", "path"), ("mode", "mode")),
    "fchmodat": (("dirfd", "at"), ("path", "path"), ("mode", "mode")),
    "fchmod": (("fd", _F), ("mode", "mode")),
    "fchown": (("fd", _F), ("owner", "int"), ("group", "int")),
    "fallocate": (("fd", _F), ("mode", "hex"), ("offset", "long"), ("len", "long")),
    "fsync": (("fd", _F),),
    "fdatasync": (("fd", _F),),
    "lseek": (("fd", _F), ("offset", "long"), ("whence", "int")),
    "dup": (("oldfd", _F),),
    "dup2": (("oldfd", _F), ("newfd", _F)),
    "dup3": (("oldfd", _F), ("newfd", _F), ("flags", "hex")),
    "pipe": (("pipefd", "fds"),),
    "pipe2": (("pipefd", "fds"), ("flags", "hex")),
    "socket": (("domain", "int"), ("type", "hex"), ("protocol", "int")),
    "socketpair": (("domain", "int"), ("type", "hex"), ("protocol", "int"), ("sv", "fds")),
    "connect": (("fd", _F), ("addr", "addr"), ("addrlen", "size")),
    "bind": (("fd", _F), ("addr", "addr"), ("addrlen", "size")),
    "listen": (("fd", _F), ("backlog", "int")),
    "accept": (("fd", _F), ("addr", "addr"), ("addrlen", "ptr")),
    "accept4": (("fd", _F), ("addr", "addr"), ("addrlen", "ptr"), ("flags", "hex")),
    "getsockname": (("fd", _F), ("addr", "addr"), ("addrlen", "ptr")),
    "getpeername": (("fd", _F), ("addr", "addr"), ("addrlen", "ptr")),
    "sendto": (("fd", _F), ("buf", "buf"), ("len", "size"), ("flags", "hex"), ("dest_addr", "addr"), ("addrlen", "size")),
    "recvfrom": (("fd", _F), ("buf", "buf"), ("len", "size"), ("flags", "hex"), ("src_addr", "addr"), ("addrlen", "ptr")),
    "sendmsg": (("fd", _F), ("msg", "buf"), ("flags", "hex")),
    "recvmsg": (("fd", _F), ("msg", "buf"), ("flags", "hex")),
    "shutdown": (("fd", _F), ("how", "int")),
    "clone": (("flags", "hex"), ("stack", "ptr"), ("parent_tid", "ptr"), ("child_tid", "ptr"), ("tls", "ptr")),
    "clone3": (("cl_args", "ptr"), ("size", "size")),
    "fork": (),
    "vfork": (),
    "execve": (("path", "path"), ("argv", "argv"), ("envp", "ptr")),
    "execveat": (("dirfd", "at"), ("path", "path"), ("argv", "argv"), ("envp", "ptr"), ("flags", "hex")),
    "wait4": (("pid", "int"), ("wstatus", "wstatus"), ("options", "hex"), ("rusage", "ptr")),
    "exit_group": (("status", "int"),),
    "exit": (("status", "int"),),
    "kill": (("pid", "int"), ("sig", "sig")),
    "tgkill": (("tgid", "int"), ("tid", "int"), ("sig", "sig")),
    "mmap": (("addr", "ptr"), ("length", "size"), ("prot", "hex"), ("flags", "hex"), ("fd", _F), ("offset", "long")),
    "munmap": (("addr", "ptr"), ("length", "size")),
    "mprotect": (("addr", "ptr"), ("length", "size"), ("prot", "hex")),
    "brk": (("addr", "ptr"),),
    "getpid": (),
    "getdents64": (("fd", _F), ("dirp", "ptr"), ("count", "size")),
    "ioctl": (("fd", _F), ("request", "hex"), ("arg", "ptr")),
    "fcntl": (("fd", _F), ("cmd", "int"), ("arg", "hex")),
}

# Calls whose effects are visible outside the process: what validation compares (issue: observable I/O).
OBSERVABLE: Final[frozenset[str]] = frozenset({
    "open", "creat", "openat", "openat2", "read", "pread64", "readv", "preadv", "preadv2",
    "write", "pwrite64", "writev", "pwritev", "pwritev2", "close", "stat", "lstat", "newfstatat", "statx",
    "unlink", "unlinkat", "mkdir", "mkdirat", "rmdir", "rename", "renameat", "renameat2", "link", "linkat",
    "symlink", "symlinkat", "truncate", "ftruncate", "fsync", "fdatasync", "chmod", "fchmodat",
    "fchmod", "fchown", "fallocate",  # change a file through an fd (validation: its final state is in scope)
    "connect", "accept", "accept4", "bind", "listen", "sendto", "sendmsg", "recvfrom", "recvmsg", "shutdown",
    "socket", "socketpair", "pipe", "pipe2", "dup", "dup2", "dup3", "fcntl",
    "sendfile", "splice", "tee", "vmsplice", "copy_file_range",  # bytes moved inside the kernel (validator: moved.py)
    "clone", "clone3", "fork", "vfork", "execve", "execveat", "wait4", "exit_group", "kill", "tgkill",
})

# strace's syscall classes (trace=%file, ...), as strace 6.x defines them for x86-64.
_FILE = {n for n, spec in ARG_SPECS.items() if any(k in ("path", "path2") for _, k in spec)} | {
    "chown", "lchown", "fchownat", "utime", "utimes", "utimensat", "futimesat", "mknod", "mknodat", "statfs",
    "getcwd", "setxattr", "lsetxattr", "getxattr", "lgetxattr", "listxattr", "llistxattr", "removexattr",
    "lremovexattr", "inotify_add_watch", "name_to_handle_at", "fanotify_mark", "swapon", "swapoff",
    "quotactl", "mount", "umount2", "pivot_root", "chroot", "acct", "uselib", "open_tree", "move_mount",
    "fspick", "mount_setattr", "setxattrat", "getxattrat", "listxattrat", "removexattrat", "file_getattr",
    "file_setattr", "open_tree_attr", "landlock_add_rule", "statmount", "listmount",
}
_NETWORK = {
    "socket", "socketpair", "bind", "listen", "accept", "accept4", "connect", "getsockname", "getpeername",
    "sendto", "recvfrom", "sendmsg", "recvmsg", "sendmmsg", "recvmmsg", "shutdown", "setsockopt", "getsockopt",
}
_PROCESS = {
    "clone", "clone3", "fork", "vfork", "execve", "execveat", "exit", "exit_group", "wait4", "waitid", "kill",
    "tkill", "tgkill", "rt_sigqueueinfo", "rt_tgsigqueueinfo", "pidfd_send_signal", "pidfd_open", "unshare",
}
_MEMORY = {
    "mmap", "munmap", "mprotect", "brk", "mremap", "madvise", "mlock", "mlock2", "munlock", "mlockall",
    "munlockall", "mincore", "msync", "remap_file_pages", "mbind", "set_mempolicy", "get_mempolicy",
    "migrate_pages", "move_pages", "pkey_mprotect", "process_madvise", "process_mrelease", "map_shadow_stack",
    "mseal", "shmat", "shmdt",
}
_SIGNAL = {
    "rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "rt_sigpending", "rt_sigtimedwait", "rt_sigsuspend",
    "rt_sigqueueinfo", "rt_tgsigqueueinfo", "sigaltstack", "kill", "tkill", "tgkill", "pause", "signalfd",
    "signalfd4", "pidfd_send_signal",
}
_DESC = {n for n, spec in ARG_SPECS.items() if spec and spec[0][1] in ("fd", "at")} | {
    "close", "dup", "dup2", "dup3", "pipe", "pipe2", "epoll_create1", "epoll_ctl", "epoll_wait", "epoll_pwait",
    "eventfd2", "timerfd_create", "select", "pselect6", "poll", "ppoll", "close_range", "fcntl", "flock",
    "sendfile", "splice", "tee", "copy_file_range", "memfd_create", "signalfd4", "inotify_init1",
}
CLASSES: Final[dict[str, frozenset[str]]] = {
    "file": frozenset(_FILE & NR_BY_NAME.keys()),
    "network": frozenset(_NETWORK & NR_BY_NAME.keys()),
    "net": frozenset(_NETWORK & NR_BY_NAME.keys()),
    "process": frozenset(_PROCESS & NR_BY_NAME.keys()),
    "memory": frozenset(_MEMORY & NR_BY_NAME.keys()),
    "signal": frozenset(_SIGNAL & NR_BY_NAME.keys()),
    "desc": frozenset(_DESC & NR_BY_NAME.keys()),
}
