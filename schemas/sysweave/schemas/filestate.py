"""How a file's final state is read: the fields of a ``FileState`` event (the contract's one definition).

The agent records them when a traced tree exits; the validator reads the same fields from a run's workdir.
Both must agree to the byte (the content hash is compared across machines), so the reading lives here, once.

    >>> import tempfile, os
    >>> d = tempfile.mkdtemp(); p = os.path.join(d, "out.txt")
    >>> with open(p, "w") as f: _ = f.write("hi\\n")
    >>> s = read_file_state(p, cap=2)
    >>> (s["type"], s["size"], s["content"], len(s["content_hash"]))  # content capped, the hash covers it all
    ('file', 3, b'hi', 64)
    >>> read_file_state(os.path.join(d, "nope"))["exists"]
    False

Reads the disk: stat, readlink, the file's bytes; never follows a
final symlink. A regular file that cannot be read has no ``content_hash`` (its content is unknown, not empty).
"""

from __future__ import annotations

import hashlib
import os
import stat

__all__ = ["CONTENT_CAP", "read_file_state"]

CONTENT_CAP = 64 * 1024  # bytes of content kept (the BLAKE2b-256 hash covers all of it)


def read_file_state(path: str, cap: int = CONTENT_CAP) -> dict[str, object]:
    """The FileState fields of ``path`` as it is now: path, exists, type, mode, size, content_hash, content, target."""
    try:
        st = os.lstat(path)
    except OSError:
        return {"path": path, "exists": False}
    mode = st.st_mode & 0o7777
    if stat.S_ISLNK(st.st_mode):
        try:
            target = os.readlink(path)
        except OSError:
            target = ""
        return {"path": path, "exists": True, "type": "symlink", "mode": mode, "size": len(target),
                "content_hash": hashlib.blake2b(target.encode(), digest_size=32).hexdigest(), "target": target}
    if stat.S_ISDIR(st.st_mode):
        return {"path": path, "exists": True, "type": "dir", "mode": mode}
    if not stat.S_ISREG(st.st_mode):
        return {"path": path, "exists": True, "type": "other", "mode": mode}
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
        return {"path": path, "exists": True, "type": "file", "mode": mode, "size": st.st_size}
    return {"path": path, "exists": True, "type": "file", "mode": mode, "size": size, "content_hash": h.hexdigest(),
            "content": head}
