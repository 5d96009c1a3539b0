"""Run both programs on one input, untraced, and read what the comparison needs (the shell of the fuzzer).

Each execution gets one scratch directory holding a fresh copy of the workdir per side, the stdin file and
the output files; both sides start at once (``Popen``, outputs to files, no pipes or threads to drain) and
run concurrently, then each side's tree is read with the contract's file-state reader
(:func:`sysweave.validator.equivalence.filestate.snapshot_tree`) and the scratch is removed.
"""

from __future__ import annotations

import os
import select
import shlex
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping
from typing import Protocol

from sysweave.validator.equivalence.filestate import FileEffect, snapshot_tree
from sysweave.validator.equivalence.harness import HarnessError, command_argv
from sysweave.validator.fuzz.model import FuzzInput, Outcome, TreeEntry

__all__ = ["Isolation", "NativeExecutor", "argv_with_args", "scratch_base"]

_OUT, _ERR = ".out", ".err"


def argv_with_args(cmd: str, args: tuple[str, ...], workdir: str | None) -> list[str]:
    """The command's argv with the case's extra arguments appended (quoted into a shell command line)."""
    argv = command_argv(cmd, workdir)
    if not args:
        return argv
    if argv[:2] == ["/bin/sh", "-c"]:
        return ["/bin/sh", "-c", cmd + " " + " ".join(shlex.quote(a) for a in args)]
    return argv + list(args)


def _entry(e: FileEffect) -> TreeEntry | None:
    if not e.exists:
        return None
    return (e.type, e.mode, e.size if e.type == "file" else None, e.digest, e.target)


def scratch_base() -> str | None:
    """Where executions make their directories: /dev/shm when it is a writable directory (tmpfs: creating and
    removing the per-execution trees costs no disk metadata writes), else the default temporary directory."""
    return "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK | os.X_OK) else None


def _exited_by(proc: subprocess.Popen[bytes], deadline: float) -> bool:
    """Wait until ``proc`` exits or ``deadline`` (monotonic) passes, without polling: a pidfd becomes readable
    when the process exits (Popen.wait(timeout) sleeps in growing steps, up to 50 ms past the exit)."""
    try:
        fd = os.pidfd_open(proc.pid)
    except (OSError, AttributeError):  # exited and reaped already, or no pidfd (kernel < 5.3)
        try:
            proc.wait(max(0.0, deadline - time.monotonic()))
            return True
        except subprocess.TimeoutExpired:
            return False
    try:
        with select.epoll() as ep:
            ep.register(fd, select.EPOLLIN)
            return bool(ep.poll(max(0.0, deadline - time.monotonic())))
    finally:
        os.close(fd)


def _child_setup(then: Callable[[], None] | None) -> Callable[[], None]:
    """What runs in each program's child before exec: no signal blocked (a blocked mask survives exec, and a
    library loaded in this process may have blocked SIGPIPE: agents.proctree.unblock_signals says why), then
    ``then`` (the private /tmp)."""
    def setup() -> None:
        signal.pthread_sigmask(signal.SIG_SETMASK, ())
        if then is not None:
            then()
    return setup


class Isolation(Protocol):
    """Private scratch for one side of one execution (the CLI passes the agents' PrivateTmp): ``enter`` runs
    in the child before exec, ``close`` after the side ended."""

    def enter(self) -> None: ...

    def close(self) -> None: ...


class NativeExecutor:
    """Runs the original and the transpiled command natively on a :class:`FuzzInput`."""

    def __init__(self, original: str, transpiled: str, workdir: str | None, timeout_s: float,
                 env: Mapping[str, str] | None = None, isolate: Callable[[str], Isolation] | None = None) -> None:
        self.commands = (original, transpiled)
        self.workdir = workdir
        self.timeout_s = timeout_s
        self.env = dict(os.environ if env is None else env)
        self.env.setdefault("PYTHONDONTWRITEBYTECODE", "1")  # no __pycache__ appearing in one side's tree
        self.executions = 0
        self.scratch = scratch_base()
        self.isolate = isolate  # run dir -> its side's private /tmp (both sides run at once: never one /tmp)
        self._open: list[Isolation] = []
        for cmd in self.commands:
            argv = command_argv(cmd, workdir)
            if not shutil.which(argv[0]) and not os.path.exists(argv[0]):
                raise HarnessError(f"command not found: {argv[0]}")

    def _prepare(self, scratch: str, side: str, inp: FuzzInput) -> str:
        run_dir = os.path.join(scratch, side)
        if self.workdir:
            shutil.copytree(self.workdir, run_dir, symlinks=True)
        else:
            os.mkdir(run_dir)
        for path, content in inp.files:
            full = os.path.join(run_dir, path)
            os.makedirs(os.path.dirname(full), exist_ok=True)
            with open(full, "wb") as f:
                f.write(content)
        return run_dir

    def _start(self, scratch: str, side: str, cmd: str, inp: FuzzInput, stdin: str) -> subprocess.Popen[bytes]:
        run_dir = self._prepare(scratch, side, inp)
        argv = argv_with_args(cmd, inp.args, self.workdir)
        with open(stdin, "rb") as i, open(os.path.join(scratch, side + _OUT), "wb") as o, \
                open(os.path.join(scratch, side + _ERR), "wb") as e:
            iso = self.isolate(run_dir) if self.isolate is not None else None
            if iso is not None:
                self._open.append(iso)
            try:
                return subprocess.Popen(argv, cwd=run_dir, stdin=i, stdout=o, stderr=e, env=self.env,
                                        start_new_session=True, preexec_fn=_child_setup(iso.enter if iso else None))
            except OSError as exc:
                raise HarnessError(f"{cmd!r}: cannot start {argv[0]}: {exc.strerror or exc}") from exc

    def _finish(self, scratch: str, side: str, proc: subprocess.Popen[bytes], deadline: float, t0: float) -> Outcome:
        if _exited_by(proc, deadline):
            code: int | None = proc.wait()
            wall = time.monotonic() - t0
        else:
            wall = time.monotonic() - t0
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            code = None
        try:  # whatever the program left running in its session
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        run_dir = os.path.realpath(os.path.join(scratch, side))
        outs = []
        for suffix in (_OUT, _ERR):
            with open(os.path.join(scratch, side + suffix), "rb") as f:
                outs.append(f.read().replace(run_dir.encode(), b"<workdir>"))
        tree = {p: _entry(e) for p, e in snapshot_tree(run_dir).items()}
        return Outcome(code, outs[0], outs[1], tree, wall)

    def run_pair(self, inp: FuzzInput) -> tuple[Outcome, Outcome]:
        """Both sides on ``inp``, concurrently. Raises HarnessError if a program cannot be started."""
        self.executions += 1
        scratch = tempfile.mkdtemp(prefix="sysweave-fuzz-", dir=self.scratch)
        try:
            stdin = os.path.join(scratch, "stdin")
            if inp.stdin is None:
                stdin = os.devnull
            else:
                with open(stdin, "wb") as f:
                    f.write(inp.stdin)
            t0 = time.monotonic()
            procs: list[subprocess.Popen[bytes]] = []
            try:
                for side, cmd in zip("ab", self.commands):
                    procs.append(self._start(scratch, side, cmd, inp, stdin))
            except HarnessError:
                for p in procs:  # the side already started must not outlive the failed start
                    os.killpg(p.pid, signal.SIGKILL)
                    p.wait()
                raise
            deadline = time.monotonic() + self.timeout_s
            a, b = (self._finish(scratch, side, p, deadline, t0) for side, p in zip("ab", procs))
            return a, b
        finally:
            for iso in self._open:
                iso.close()
            self._open.clear()
            shutil.rmtree(scratch, ignore_errors=True)
