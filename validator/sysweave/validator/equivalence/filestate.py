"""Final states of files: the :class:`FileEffect` model, built from ``FileState`` events or read from disk.

:func:`from_event` is pure; :func:`read_state` and :func:`snapshot_tree` read the disk (the harness calls them
right after a local run, before the run's directory is removed). Content is compared by a BLAKE2b-256 digest
of the whole file; the first ``CONTENT_CAP`` bytes are kept to show where two contents differ.

    >>> from sysweave.schemas.events import EventHeader, FileState
    >>> fs = FileState(EventHeader(b"\\0" * 16, "h", 1, 1, 0, 0), "/w/out.txt", True, "file", 0o644, 3, "ab", b"ok\\n")
    >>> e = from_event(fs)
    >>> (e.exists, e.type, oct(e.mode or 0), e.digest, e.content)
    (True, 'file', '0o644', 'ab', b'ok\\n')
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass

from sysweave.schemas.events import FileState
from sysweave.schemas.filestate import CONTENT_CAP, read_file_state
from sysweave.validator.equivalence.origin import Origin

__all__ = ["CONTENT_CAP", "FileEffect", "from_event", "read_range", "read_state", "snapshot_tree"]

_SKIP_DIRS = ("__pycache__",)


@dataclass
class FileEffect:
    """The final state of one path in scope. ``known`` False: in scope, but its final state is not available
    (a stored trace without FileState events): compared by nothing, counted against confidence."""

    path: str
    exists: bool
    type: str = ""  # "file", "dir", "symlink", "other"
    mode: int | None = None
    size: int | None = None
    digest: str | None = None
    content: bytes | None = None  # whole, or the first bytes (len(content) < size)
    target: str = ""
    known: bool = True
    origin: Origin | None = None  # the call that last changed it

    def describe(self) -> str:
        if not self.known:
            return "unknown"
        if not self.exists:
            return "absent"
        if self.type == "symlink":
            return f"symlink -> {self.target}"
        mode = f" mode {self.mode:04o}" if self.mode is not None else ""
        size = f", {self.size:,} bytes" if self.type == "file" and self.size is not None else ""
        return f"{self.type}{mode}{size}"


def from_event(fs: FileState) -> FileEffect:
    if not fs.exists:
        return FileEffect(fs.path, False)
    return FileEffect(fs.path, True, fs.type, fs.mode, fs.size, fs.content_hash or None,
                      fs.content if fs.type == "file" else None, fs.target)


def read_state(path: str, cap: int = CONTENT_CAP) -> FileEffect:
    """The state of ``path`` on disk now (never follows a final symlink), read as the agent reads it."""
    d = read_file_state(path, cap)
    if not d["exists"]:
        return FileEffect(path, False)
    kind, mode, size = str(d["type"]), d.get("mode"), d.get("size")
    assert isinstance(mode, int) and (size is None or isinstance(size, int))
    digest = d.get("content_hash")
    if kind == "file" and digest is None:  # could not be read: in scope, content unknown
        return FileEffect(path, True, "file", mode, size, known=False)
    content = d.get("content")
    return FileEffect(path, True, kind, mode, size, str(digest) if digest else None,
                      content if isinstance(content, bytes) else None, str(d.get("target", "")))


def read_range(path: str, start: int, end: int) -> bytes | None:
    """Bytes [start, end) of the regular file ``path`` on disk now (never follows a final symlink); None when
    it is not a regular file, cannot be read or is shorter (bytes a sendfile/splice moved: :mod:`.moved`)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        data = os.pread(fd, end - start, start)
    except OSError:
        return None
    finally:
        os.close(fd)
    return data if len(data) == end - start else None


def snapshot_tree(root: str, skip: tuple[str, ...] = ()) -> dict[str, FileEffect]:
    """Every entry under ``root`` as ``"./rel"`` -> state (``__pycache__`` and the ``skip`` names left out)."""
    out: dict[str, FileEffect] = {}
    root = os.path.realpath(root)
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d not in _SKIP_DIRS]
        for name in dirnames + filenames:
            full = os.path.join(dirpath, name)
            rel = "./" + os.path.relpath(full, root)
            if rel[2:] in skip:
                continue
            out[rel] = read_state(full)
            out[rel].path = rel
    return out
