"""The system calls that change the file system, defined once for the agents (which read the final state of
what a run wrote: ``agents.file_effects``) and the validator (which decides what a run's effects are).

``PATH_WRITES``: call -> the path arguments it changes, each with the dirfd argument it is relative to ("": the
cwd), as the agents decode them (``agents.syscall_args``). ``FD_WRITES``: calls that change the file an fd
refers to. ``CREATES``: path writes that create what they name (rename's new path too, by position)."""

from __future__ import annotations

__all__ = ["CREATES", "FD_WRITES", "PATH_WRITES"]

PATH_WRITES: dict[str, tuple[tuple[str, str], ...]] = {
    "creat": (("path", ""),),
    "truncate": (("path", ""),),
    "unlink": (("path", ""),), "unlinkat": (("path", "dirfd"),),
    "rmdir": (("path", ""),),
    "mkdir": (("path", ""),), "mkdirat": (("path", "dirfd"),),
    "mknod": (("path", ""),), "mknodat": (("path", "dirfd"),),
    "rename": (("oldpath", ""), ("newpath", "")),
    "renameat": (("oldpath", "olddirfd"), ("newpath", "newdirfd")),
    "renameat2": (("oldpath", "olddirfd"), ("newpath", "newdirfd")),
    "link": (("newpath", ""),), "linkat": (("newpath", "newdirfd"),),
    "symlink": (("linkpath", ""),), "symlinkat": (("linkpath", "newdirfd"),),
    "chmod": (("path", ""),), "fchmodat": (("path", "dirfd"),), "fchmodat2": (("path", "dirfd"),),
    "chown": (("path", ""),), "lchown": (("path", ""),), "fchownat": (("path", "dirfd"),),
}
FD_WRITES = frozenset({"ftruncate", "fchmod", "fchown", "fallocate"})
CREATES = frozenset({"creat", "mkdir", "mkdirat", "mknod", "mknodat", "link", "linkat", "symlink", "symlinkat"})
