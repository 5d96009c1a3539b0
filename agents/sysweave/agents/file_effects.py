"""File effects of a traced tree: which paths it wrote (pure, from its events) and their final state.

Validation compares runs by their effects on the world (docs/equivalence.md); for files that is the final
state of every path the tree wrote. :class:`WrittenPaths` follows the events as capture decodes them (cheap:
only the calls that name or write a path, fork and chdir matter) and :func:`file_states` reads each path's
final state once the tree has exited, as :class:`~sysweave.schemas.events.FileState` events that travel
with the trace (so a stored trace validates away from the machine's disk).

Worked example::

    >>> from sysweave.schemas.events import EventHeader, SyscallSpan
    >>> def sc(name, ret, **a):
    ...     return SyscallSpan(EventHeader(b"\\0" * 16, "h", 7, 7, 0, 0), 0, name, ret, a)
    >>> w = WrittenPaths("/work")
    >>> for e in (sc("openat", 3, dirfd=-100, path="out.tmp", flags=0o101),        # O_WRONLY|O_CREAT
    ...           sc("openat", 4, dirfd=-100, path="in.txt", flags=0),              # a read: not an effect
    ...           sc("rename", 0, oldpath="out.tmp", newpath="/work/out.txt"),
    ...           sc("mkdir", 0, path="d", mode=0o755), sc("write", 2, fd=1)):
    ...     w.feed(e)
    >>> w.paths()
    ['/work/d', '/work/out.tmp', '/work/out.txt']
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable

from sysweave.schemas.events import Event, EventHeader, FileState, ProcessEvent, ProcessEventType, SyscallSpan
from sysweave.schemas.filestate import CONTENT_CAP, read_file_state
from sysweave.schemas.fscalls import FD_WRITES, PATH_WRITES

__all__ = ["CONTENT_CAP", "IGNORED_WRITE_PREFIXES", "MAX_PATHS", "WrittenPaths", "file_state", "file_states",
           "written_paths"]

MAX_PATHS = 10_000  # paths recorded per tree (beyond: counted, not recorded)
IGNORED_WRITE_PREFIXES = ("/dev/", "/proc/", "/sys/", "/run/")  # devices and kernel interfaces are not files
AT_FDCWD = -100
O_ACCMODE, O_CREAT, O_TRUNC = 3, 0o100, 0o1000

_OPENS = frozenset({"open", "openat", "openat2"})


class WrittenPaths:
    """The absolute paths a process tree wrote, followed event by event (feed them in order).

    ``cwd``: the working directory of the tree's root (relative paths of processes first seen resolve
    against it). Tracks each process's cwd (fork copies it, chdir changes it) and the paths of fds it
    opened (for ``*at`` calls relative to a directory fd and for ``ftruncate``/``fchmod``).
    """

    def __init__(self, cwd: str) -> None:
        self.cwd = os.path.normpath(cwd)
        self._cwds: dict[int, str] = {}
        self._fds: dict[int, dict[int, str]] = {}
        self._paths: dict[str, None] = {}
        self.dropped = 0  # paths beyond MAX_PATHS

    def paths(self) -> list[str]:
        return sorted(self._paths)

    def _resolve(self, pid: int, path: str, dirfd: object = AT_FDCWD) -> str:
        if path.startswith("/"):
            return os.path.normpath(path)
        base = self._cwds.get(pid, self.cwd)
        if isinstance(dirfd, int) and dirfd != AT_FDCWD:
            base = self._fds.get(pid, {}).get(dirfd, base)
        return os.path.normpath(os.path.join(base, path))

    def _add(self, path: str) -> None:
        if path.startswith(IGNORED_WRITE_PREFIXES) or path in self._paths:
            return
        if len(self._paths) >= MAX_PATHS:
            self.dropped += 1
            return
        self._paths[path] = None

    def feed(self, e: Event) -> None:
        if isinstance(e, ProcessEvent):
            if e.type is ProcessEventType.FORK and e.child_pid:
                self._cwds[e.child_pid] = self._cwds.get(e.h.pid, self.cwd)
                self._fds[e.child_pid] = dict(self._fds.get(e.h.pid, {}))
            return
        if not isinstance(e, SyscallSpan) or e.ret < 0:
            return
        name, a, pid = e.name, e.args, e.h.pid
        if name in _OPENS:
            path = self._resolve(pid, str(a.get("path", "")), a.get("dirfd", AT_FDCWD))
            self._fds.setdefault(pid, {})[e.ret] = path
            flags = a.get("flags", 0)
            if isinstance(flags, int) and (flags & O_ACCMODE or flags & (O_CREAT | O_TRUNC)):
                self._add(path)
        elif name in PATH_WRITES:
            for arg, dirarg in PATH_WRITES[name]:
                value = a.get(arg)
                if isinstance(value, str) and value:
                    self._add(self._resolve(pid, value, a.get(dirarg, AT_FDCWD) if dirarg else AT_FDCWD))
            if name == "creat":
                self._fds.setdefault(pid, {})[e.ret] = self._resolve(pid, str(a.get("path", "")))
        elif name in FD_WRITES:
            fd = a.get("fd")
            opened = self._fds.get(pid, {}).get(fd) if isinstance(fd, int) else None
            if opened:
                self._add(opened)
        elif name == "chdir":
            self._cwds[pid] = self._resolve(pid, str(a.get("path", "")))
        elif name == "fchdir":
            fd = a.get("fd")
            if isinstance(fd, int) and fd in self._fds.get(pid, {}):
                self._cwds[pid] = self._fds[pid][fd]
        elif name == "close":
            fd = a.get("fd")
            if isinstance(fd, int):
                self._fds.get(pid, {}).pop(fd, None)


def written_paths(events: Iterable[Event], cwd: str) -> list[str]:
    """The sorted absolute paths ``events`` (one host's tree, in program order) wrote; see the module example."""
    w = WrittenPaths(cwd)
    for e in events:
        w.feed(e)
    return w.paths()


def file_state(path: str, cap: int = CONTENT_CAP) -> dict[str, object]:
    """The fields of a FileState for ``path`` as it is now (``sysweave.schemas.filestate``: one definition)."""
    return read_file_state(path, cap)


def file_states(paths: Iterable[str], cwd: str, header: Callable[[int], EventHeader],
                cap: int = CONTENT_CAP, where: Callable[[str], str | None] | None = None) -> list[FileState]:
    """One FileState per path, read from disk now; ``header(i)`` makes the i-th event's header. ``where``: where
    a path's final state lies now (a run's private /tmp: :meth:`~.scratch.PrivateTmp.final_path`; None: deleted)."""
    out = []
    for i, p in enumerate(paths):
        at = where(p) if where is not None else p
        fields = {**file_state(at, cap), "path": p} if at is not None else {"path": p, "exists": False}
        out.append(FileState(header(i), cwd=cwd, **fields))  # type: ignore[arg-type]
    return out
