"""The typed state of one extraction pass (pure): what :mod:`.effects`' handlers collect from a run's events
and :mod:`.settle` turns into an :class:`~.model.Obs`.

One :class:`Extraction` per run. Its fields fall in four groups — processes, files in scope, sockets and
conversations, stdio — and every field says what it is keyed by. Nothing outside the extraction modules
(:mod:`.observe`, :mod:`.effects`, :mod:`.settle`) reads or writes it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field

from sysweave.schemas.events import Event, FileState, SyscallSpan
from sysweave.streams.pipeline.fdresources import Resource
from sysweave.streams.pipeline.fdtrack import FdTracker
from sysweave.validator.equivalence.filestate import FileEffect
from sysweave.validator.equivalence.model import IGNORED_PARTS, IGNORED_PREFIXES, Conversation, Key, Obs, Origin
from sysweave.validator.equivalence.pipes import Piece, PipeModel
from sysweave.validator.equivalence.ports import KernelPorts
from sysweave.validator.equivalence.processes import Proc

__all__ = ["Extraction", "PathNames", "Pending"]


class PathNames:
    """Workdir-relative names ("./x"), absolute elsewhere, None for the runtime's own files (memoised).

    ``home``: the user's home directory (its dot-directories are the runtime's). ``runtime_prefixes``: the
    PREFIX of every exec'd PREFIX/bin/program (venvs, /usr/local): files under them are the runtime's."""

    def __init__(self, home: str | None) -> None:
        self.home = home
        self.runtime_prefixes: set[str] = set()
        self._cache: dict[tuple[str, str], str | None] = {}

    def add_runtime_prefix(self, prefix: str) -> None:
        self.runtime_prefixes.add(prefix)
        self._cache.clear()  # earlier answers may now be runtime files

    def rel(self, path: str, cwd: str) -> str | None:
        k = (path, cwd)
        try:
            return self._cache[k]
        except KeyError:
            r = self._cache[k] = self._rel(path, cwd)
            return r

    def _rel(self, path: str, cwd: str) -> str | None:
        if not path.startswith("/"):  # relative to an unknown cwd: relative to the run's cwd
            path = os.path.normpath(path)
            rel = "./" + path if path != "." else "."
            return None if any(p in rel + "/" for p in IGNORED_PARTS) else rel
        if cwd and (path == cwd or path.startswith(cwd + "/")):
            rel = "./" + os.path.relpath(path, cwd) if path != cwd else "."
            return None if any(p in rel + "/" for p in IGNORED_PARTS) else rel
        if path.startswith(IGNORED_PREFIXES) or any(p in path + "/" for p in IGNORED_PARTS):
            return None
        if any(path.startswith(p) for p in self.runtime_prefixes):
            return None
        if self.home and path.startswith(self.home + "/."):
            return None
        return path


@dataclass(frozen=True, slots=True)
class Pending:
    """Bytes a conversation got from ``piece`` (moved inside the kernel: :mod:`.moved`): stream bytes
    [at, at + n) of ``direction`` (placeholders until settled), or datagram message number ``at``."""

    conv: Conversation
    direction: str
    at: int
    n: int
    piece: Piece


def _no_order(e: Event) -> float:
    return 0.0


@dataclass(eq=False)
class Extraction:
    """One pass over a run's events. ``workdir``: the run's working directory, resolved ("" when unknown: a
    stored trace's hosts then name theirs in ``cwds``). ``final_state``: reads a path's final state where the
    trace has no FileState for it. ``capture_stdio``: rebuild stdout/stderr from write payloads. ``order``:
    an event's happens-before position in [0, 1] (set once the events are sorted)."""

    workdir: str
    paths: PathNames
    final_state: Callable[[str], FileEffect] | None
    capture_stdio: bool
    tracker: FdTracker
    obs: Obs = field(default_factory=Obs)
    order: Callable[[Event], float] = _no_order
    # --- processes ---
    procs: dict[Key, Proc] = field(default_factory=dict)
    effects: set[Key] = field(default_factory=set)  # processes with effects of their own
    direct: set[Key] = field(default_factory=set)  # output effects: stdio, network (what a fork wrapper never has)
    first_output: dict[Key, int] = field(default_factory=dict)  # process -> mono_ns of its first output
    program_files: set[str] = field(default_factory=set)  # exec'd images and scripts: the runtime's, not input
    signal_seen: set[Key] = field(default_factory=set)  # processes that reaped a child killed by a signal
    signals_sent: dict[Key, int] = field(default_factory=dict)  # process -> the last signal a traced process sent it
    exec_failing: dict[Key, tuple[int, tuple[str, ...]]] = field(default_factory=dict)  # see effects.exec_failed
    reports: dict[Key, list[tuple[str, int, int]]] = field(default_factory=dict)  # their stderr writes since
    tables: dict[Key, dict[int, Resource]] = field(default_factory=dict)  # live fd tables (fdtrack), hot path
    # --- files ---
    cwds: dict[str, str] = field(default_factory=dict)  # host -> the tree's working directory (FileState.cwd)
    scope: dict[tuple[str, str], Event] = field(default_factory=dict)  # (host, path) -> the call that last changed it
    created: set[tuple[str, str]] = field(default_factory=set)  # (host, path) the run created
    touched: dict[tuple[Key, str], int] = field(default_factory=dict)  # (process, path) -> when it first wrote there
    file_writes: dict[int, Event] = field(default_factory=dict)  # FILE resource id -> its last write
    file_of: dict[int, tuple[str, str]] = field(default_factory=dict)  # FILE resource id -> (host, path)
    file_pid: dict[int, int] = field(default_factory=dict)  # FILE resource id -> the pid that wrote it last
    io_bytes: int = 0  # bytes of the hot path's file writes (the rest count in obs.io_bytes directly)
    reads: list[tuple[Key, str, str, bool]] = field(default_factory=list)  # (process, host, path, is a directory)
    states: dict[tuple[str, str], FileState] = field(default_factory=dict)  # (host, path) -> its FileState
    # --- sockets and conversations (by fdtrack resource id) ---
    bound: dict[int, str] = field(default_factory=dict)  # socket -> its bound address (normalised)
    conns: dict[int, Conversation] = field(default_factory=dict)  # stream connection -> its conversation
    dgram_sockets: set[int] = field(default_factory=set)
    kernel_sockets: set[int] = field(default_factory=set)  # families that are not networks (netlink, ...)
    peer: dict[int, str] = field(default_factory=dict)  # connected datagram socket -> its peer
    kernel_ports: KernelPorts = field(default_factory=KernelPorts)  # ports the kernel assigned, by name (ports.py)
    dgram: dict[tuple[str, str], Conversation] = field(default_factory=dict)  # (host, "to X"/"on Y") -> datagrams
    # --- bytes moved inside the kernel (:mod:`.moved`) ---
    model_pipes: bool = False  # the trace moves bytes out of pipes (splice, tee, vmsplice): model their content
    pipes: PipeModel = field(default_factory=PipeModel)  # pipe resource id -> its byte stream
    pending: list[Pending] = field(default_factory=list)  # conversation ranges to fill once the trace is whole
    # (path, start, end) -> the bytes on disk now (the harness's reader; None: a stored trace, no disk to read)
    read_range: Callable[[str, int, int], bytes | None] | None = None
    read_left: int = 64 << 20  # bytes read_range may still read for this run (a bound on memory)
    stdin_range: Callable[[int, int], bytes | None] | None = None  # (start, end) -> the run's stdin bytes
    # --- stdio ---
    stream_pos: dict[str, int] = field(default_factory=dict)  # stream key -> bytes written so far
    strip: list[tuple[str, int, int]] = field(default_factory=list)  # (stream, start, end): launchers' reports

    @classmethod
    def start(cls, workdir: str, home: str | None, final_state: Callable[[str], FileEffect] | None,
              capture_stdio: bool) -> Extraction:
        real = os.path.realpath(workdir) if workdir else ""
        return cls(real, PathNames(home), final_state, capture_stdio, FdTracker(real or None))

    def origin(self, e: Event) -> Origin:
        return Origin(e.h.host_id, e.h.pid, self.order(e))

    def proc(self, host: str, pid: int) -> Proc:
        p = self.procs.get((host, pid))
        if p is None:
            p = self.procs[(host, pid)] = Proc((host, pid))
        return p

    def cwd_of(self, host: str) -> str:
        """The directory paths of ``host`` are named relative to."""
        return self.workdir or self.cwds.get(host, "")

    def host_prefix(self, host: str) -> str:
        return f"{host}: " if len(self.obs.hosts) > 1 else ""

    def stream_key(self, host: str, n: int) -> str:
        name = "stdout" if n == 1 else "stderr"
        return name if len(self.obs.hosts) <= 1 else f"{host}: {name}"

    def live_table(self, e: SyscallSpan) -> dict[int, Resource]:
        """The calling process's live fd table (cached per process; fdtrack's own object)."""
        key = (e.h.host_id, e.h.pid)
        fds = self.tables.get(key)
        if fds is None:
            fds = self.tables[key] = self.tracker.live_table(*key)
        return fds
