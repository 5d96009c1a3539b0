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

import hashlib
import os
import stat
from dataclasses import dataclass

from sysweave.schemas.events import FileState

__all__ = ["CONTENT_CAP", "FileEffect", "from_event", "read_state", "snapshot_tree"]

CONTENT_CAP = 64 * 1024
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
    origin: object | None = None  # observe.Origin of the call that last changed it

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
    """The state of ``path`` on disk now (never follows a final symlink)."""
    try:
        st = os.lstat(path)
    except OSError:
        return FileEffect(path, False)
    mode = st.st_mode & 0o7777
    if stat.S_ISLNK(st.st_mode):
        try:
            target = os.readlink(path)
        except OSError:
            target = ""
        return FileEffect(path, True, "symlink", mode, len(target),
                          hashlib.blake2b(target.encode(), digest_size=32).hexdigest(), None, target)
    if stat.S_ISDIR(st.st_mode):
        return FileEffect(path, True, "dir", mode)
    if not stat.S_ISREG(st.st_mode):
        return FileEffect(path, True, "other", mode)
    h = hashlib.blake2b(digest_size=32)
    head = b""
    size = 0
    try:
        with open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                if len(head) < cap:
                    head += chunk[:cap - len(head)]
                h.update(chunk)
                size += len(chunk)
    except OSError:
        return FileEffect(path, True, "file", mode, st.st_size, known=False)
    return FileEffect(path, True, "file", mode, size, h.hexdigest(), head)


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
