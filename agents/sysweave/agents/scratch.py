"""Private scratch for one run: its own /tmp, in a private mount namespace (issue 17.5).

Two runs of a validation used to share everything outside their workdirs: a file one appended to in /tmp was
longer when the other ran. :class:`PrivateTmp` gives a run an overlay on /tmp -- reads see the host's /tmp
(programs and inputs kept there still work), every write lands in the run's own upper directory (on
/dev/shm, removed by :meth:`PrivateTmp.close`) -- inside a mount namespace only the run's tree has. Paths that
must stay shared (the run's workdir copy, which the harness reads afterwards) are bind-mounted back over
the overlay, so a program that names its workdir by an absolute path still writes the real one.

Use (the launch path calls it; the capture's ``ProcessTree.start`` runs ``enter`` in the child)::

    scratch = PrivateTmp(shared=[run_dir])
    subprocess.Popen(argv, cwd=run_dir, preexec_fn=scratch.enter)
    ...
    final = read_file_state(scratch.final_path("/tmp/report.txt"))   # where the run's /tmp/report.txt is now
    scratch.close()

Needs CAP_SYS_ADMIN (mount, unshare) and overlayfs; :func:`unavailable` names what is missing and the fix.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import stat
import tempfile
from collections.abc import Sequence

from sysweave.schemas.errors import AgentError

__all__ = ["TMP", "PrivateTmp", "ScratchError", "unavailable"]

TMP = "/tmp"
_CLONE_NEWNS = 0x00020000
_MS_BIND, _MS_REC, _MS_PRIVATE = 4096, 16384, 1 << 18
_O_PATH = getattr(os, "O_PATH", 0o10000000)
_libc = ctypes.CDLL(None, use_errno=True)


class ScratchError(AgentError):
    """A run's private /tmp could not be set up (the message says what to do)."""


def unavailable() -> str | None:
    """Why private scratch cannot be made here, with the fix; None when it can."""
    if os.geteuid() != 0:
        return "a private /tmp needs root (mount namespaces, overlayfs): run as root"
    try:
        with open("/proc/filesystems") as f:
            if "overlay" not in f.read():
                return "overlayfs is not available: run 'modprobe overlay'"
    except OSError as exc:
        return f"cannot read /proc/filesystems: {exc}"
    return None


def _check(rc: int, what: str) -> None:
    """In the child: a failed step ends it with 126 and says which (it must not run unprivate)."""
    if rc != 0:
        os.write(2, f"sysweave: private /tmp: {what}: {os.strerror(ctypes.get_errno())}\n".encode())
        os._exit(126)


def _under(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


class PrivateTmp:
    """One run's private /tmp (see the module docstring). ``shared``: directories under /tmp the run must see
    as they are (bind-mounted back). ``base``: where the upper layer lives (tmpfs; not under /tmp)."""

    def __init__(self, shared: Sequence[str] = (), base: str = "/dev/shm", cwd: str | None = None) -> None:
        why = unavailable()
        if why:
            raise ScratchError(why)
        self.tmp = os.path.realpath(TMP)
        self.dir = tempfile.mkdtemp(prefix="sysweave-scratch-", dir=base if os.path.isdir(base) else None)
        if _under(self.dir, self.tmp):
            shutil.rmtree(self.dir, ignore_errors=True)
            raise ScratchError(f"private /tmp: {base} is not usable and the default temporary directory is /tmp")
        self.upper, work = os.path.join(self.dir, "upper"), os.path.join(self.dir, "work")
        os.mkdir(self.upper)
        os.mkdir(work)
        self.shared = [p for p in (os.path.realpath(s) for s in shared) if _under(p, self.tmp)]
        # everything the child needs, built here: between fork and exec only these bytes are used
        self._opts = f"lowerdir={self.tmp},upperdir={self.upper},workdir={work}".encode()
        self._tmp_b = self.tmp.encode()
        self._shared_b = [p.encode() for p in self.shared]
        # the child re-enters its working directory through the new mounts: a cwd left on the covered /tmp
        # would be another mount than the bound path, and a rename between the two fails (EXDEV)
        self._cwd_b = os.path.realpath(cwd).encode() if cwd else None

    def enter(self) -> None:
        """In the child, before exec: a private mount namespace with the overlay on /tmp. Exits the child
        with status 126 and a message on stderr if a step fails (the run cannot be private: not run at all)."""
        _check(_libc.unshare(_CLONE_NEWNS), "unshare(CLONE_NEWNS)")
        _check(_libc.mount(None, b"/", None, _MS_REC | _MS_PRIVATE, None), "mount --make-rprivate /")
        # the shared directories, held before the overlay hides them (opened in the new namespace: a bind's
        # source must be a mount of the namespace it is made in)
        fds = [os.open(p, os.O_RDONLY | _O_PATH | os.O_DIRECTORY) for p in self._shared_b]
        _check(_libc.mount(b"overlay", self._tmp_b, b"overlay", 0, self._opts), "mount overlay on /tmp")
        for fd, p in zip(fds, self._shared_b):
            _check(_libc.mount(b"/proc/self/fd/%d" % fd, p, None, _MS_BIND | _MS_REC, None), "bind the workdir")
            os.close(fd)
        if self._cwd_b is not None:
            os.chdir(self._cwd_b)

    def final_path(self, path: str) -> str | None:
        """Where the final state of ``path`` (as the run saw it) is now: its upper-layer copy when the run
        wrote it, the host path when it did not (or when it is not under /tmp or is shared); None when the
        run deleted it (an overlay whiteout)."""
        real = os.path.join(os.path.realpath(os.path.dirname(path)), os.path.basename(path))
        if not _under(real, self.tmp) or any(_under(real, s) for s in self.shared) or real == self.tmp:
            return path
        upper = os.path.join(self.upper, os.path.relpath(real, self.tmp))
        try:
            st = os.lstat(upper)
        except OSError:
            return path
        if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
            return None
        return upper

    def close(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)
