"""The effects model (Obs) that extraction builds and comparison reads; what is runtime, not effect.

docs/equivalence.md is the definition. An :class:`Obs` holds one run's effects: exit status, stdout and
stderr, the final state of every file in scope (:class:`~.filestate.FileEffect`), conversations by endpoint,
listening endpoints, input files read, and the visible-program tree; every effect carries the
:class:`Origin` of the call where it began (for the report's happens-before order).

    >>> normalize_endpoint("127.0.0.1:40000", {40000: "ephemeral-bind#1"}), normalize_endpoint("127.0.0.1:40007", {})
    ('loopback:ephemeral-bind#1', 'loopback:40007')
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field

from sysweave.validator.equivalence.filestate import FileEffect
from sysweave.validator.equivalence.origin import Origin
from sysweave.validator.equivalence.processes import ProgramNode

__all__ = ["EXEC_KILLED_ERRNOS", "IGNORED_PARTS", "IGNORED_PREFIXES", "STDIO_PATHS", "Conversation", "Key", "Obs",
           "Origin", "StreamObs", "normalize_endpoint"]

IGNORED_PREFIXES = ("/usr/", "/lib/", "/lib64/", "/etc/", "/proc/", "/sys/", "/dev/", "/run/", "/var/lib/", "/var/cache/",
                    "/opt/", "/snap/", "/nix/", "/bin/", "/sbin/")
IGNORED_PARTS = ("/__pycache__/", "/site-packages/", "/dist-packages/", "/.pyenv/", "/.cache/", "/.rustup/", "/.cargo/",
                 "/.local/lib/")
O_ACCMODE, O_CREAT, O_TRUNC, O_DIRECTORY = 3, 0o100, 0o1000, 0o200000
SOCK_DGRAM = 2
# How an exec fails when a fatal signal arrives while the kernel replaces the image (killable locks, a page
# fault of the new image that could not complete; ERESTART* are the kernel's own codes, seen at sys_exit):
# the process then dies inside the exec. Reproduced: posix_spawn of a binary not in the page cache, then
# kill(SIGTERM) at once -- vfork releases the parent before the exec completes, and the exec fails with
# EFAULT. Whether the new image ran before the signal is scheduling, not behaviour (observe: EXEC_KILLED).
EXEC_KILLED_ERRNOS = frozenset({4, 11, 12, 14, 512, 513, 514, 516})  # EINTR EAGAIN ENOMEM EFAULT ERESTART*
NETWORK_FAMILIES = frozenset({1, 2, 10})  # AF_UNIX, AF_INET, AF_INET6: conversations; others (netlink) are not
STDIO_PATHS = {"/dev/stdout": 1, "/dev/stderr": 2, "/dev/fd/1": 1, "/dev/fd/2": 2, "/proc/self/fd/1": 1,
               "/proc/self/fd/2": 2}
SCRIPT_SUFFIXES = (".py", ".pyc", ".sh", ".bash", ".pl", ".rb", ".js", ".mjs", ".lua", ".php", ".tcl", ".r", ".jl")

Key = tuple[str, int]


@dataclass
class StreamObs:
    """stdout or stderr: the bytes, and (end offset, origin) of each write that carried them."""

    data: bytes = b""
    total: int = 0  # bytes written; more than len(data) when rebuilt from truncated payloads
    writes: list[tuple[int, Origin]] = field(default_factory=list)
    gap: int | None = None  # rebuilt from payloads: data is the stream's bytes only up to here


@dataclass
class Conversation:
    """One connection (kind "stream": bytes per direction) or one peer's datagrams (kind "datagram")."""

    endpoint: str
    kind: str
    sent: bytearray = field(default_factory=bytearray)
    received: bytearray = field(default_factory=bytearray)
    messages: list[tuple[str, bytes]] = field(default_factory=list)  # datagrams: ("sent" | "received", bytes)
    total: int = 0  # bytes moved
    captured: int = 0  # of which captured (payload capture is capped per call)
    totals: dict[str, int] = field(default_factory=dict)  # direction -> bytes moved
    gaps: dict[str, int] = field(default_factory=dict)  # direction -> the captured bytes are the stream's up to here
    unknown: dict[str, int] = field(default_factory=dict)  # why -> bytes moved in the kernel that cannot be known
    ios: list[tuple[str, int, Origin]] = field(default_factory=list)  # (direction, end offset or index, origin)
    origin: Origin | None = None

    @property
    def truncated(self) -> bool:
        return self.captured < self.total


@dataclass
class Obs:
    exit_code: int | None = None
    exit_signal: int | None = None  # the program died of this signal (exit_code is then None)
    streams: dict[str, StreamObs] = field(default_factory=dict)  # "stdout", "stderr" (multi-host: "B: stdout")
    files: dict[str, FileEffect] = field(default_factory=dict)
    conversations: dict[str, list[Conversation]] = field(default_factory=dict)
    listening: dict[str, Origin] = field(default_factory=dict)
    reads: dict[str, Origin] = field(default_factory=dict)  # input files the program read
    programs: ProgramNode | None = None
    host_exits: dict[str, int | None] = field(default_factory=dict)  # multi-host: each host's root
    roles: dict[Key, str] = field(default_factory=dict)  # process -> its program's argv, for reports
    process_origins: dict[Key, Origin] = field(default_factory=dict)  # process -> the fork that made it
    hosts: list[str] = field(default_factory=list)
    exit_origin: Origin | None = None
    syscalls: int = 0
    io_bytes: int = 0
    events: int = 0
    lost_events: int = 0
    masked_bytes: int = 0  # output bytes masked as nondeterministic (--runs)
    edges: list[tuple[str, str, str]] = field(default_factory=list)  # (kind, from role, to role): data flow

    @property
    def root(self) -> ProgramNode | None:
        """The program under test (launchers looked through)."""
        return self.programs

    @property
    def stdout(self) -> bytes:
        s = self.streams.get("stdout")
        return s.data if s else b""

    @property
    def stderr(self) -> bytes:
        s = self.streams.get("stderr")
        return s.data if s else b""


def normalize_endpoint(addr: str, kernel_ports: Mapping[int, str] | None = None) -> str:
    """Loopback hosts -> "loopback"; a port the kernel assigned in the run (``kernel_ports``: port -> its name,
    from :func:`.ports.kernel_ports`) -> its name ("ephemeral-bind#1"); a port the program chose stays as it
    is. Without ``kernel_ports`` (no events to tell), every port >= 32768 is taken for a kernel's:
    "ephemeral"."""
    if not addr or addr.startswith(("unix:", "family=")) or ":" not in addr:
        return addr
    host, _, port = addr.rpartition(":")
    host = host.strip("[]")
    try:
        if ipaddress.ip_address(host).is_loopback:
            host = "loopback"
    except ValueError:
        pass
    p = int(port) if port.isdigit() else -1
    if kernel_ports is None:
        return f"{host}:{'ephemeral' if p >= 32768 else port}"
    return f"{host}:{kernel_ports.get(p, port)}"
