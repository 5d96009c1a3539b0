"""Obs(P): what a run did that can be seen from outside, extracted from its trace (pure).

What counts (see docs/equivalence.md for the full definition and examples):
  stdout, stderr (bytes, captured by the harness), exit code / terminating signal;
  files created, modified, renamed or deleted (path relative to the run's workdir, final content,
  the order of create/write/rename/delete operations per file, writes coalesced so buffering does not
  matter); paths of files only read; network connections (normalised remote endpoint, bytes sent and
  received in order); listening sockets; child processes (argv normalised, exit codes), recursively.
What does not: the runtime's own files (interpreters, shared libraries, /proc, /sys, /usr, /etc, caches,
``__pycache__``), memory management, threads, timing, fd numbers, pointer values.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Iterable
from dataclasses import dataclass, field

from sysweave.schemas.events import EdgeKind, Event, ProcessEvent, ProcessEventType, SyscallSpan, UnifiedTrace

IGNORED_PREFIXES = ("/usr/", "/lib/", "/lib64/", "/etc/", "/proc/", "/sys/", "/dev/", "/run/", "/var/lib/", "/var/cache/",
                    "/opt/", "/snap/", "/nix/")
IGNORED_PARTS = ("/__pycache__/", "/site-packages/", "/dist-packages/", "/.pyenv/", "/.cache/", "/.rustup/", "/.cargo/",
                 "/.local/lib/")
O_ACCMODE, O_CREAT, O_TRUNC, O_DIRECTORY = 3, 0o100, 0o1000, 0o200000
AT_FDCWD, AT_REMOVEDIR = -100, 0x200
F_DUPFD, F_DUPFD_CLOEXEC = 0, 1030
EINPROGRESS = 115


@dataclass
class FileObs:
    path: str
    ops: list[str] = field(default_factory=list)  # create/write/truncate/rename->X/renamed<-X/delete/mkdir/rmdir
    bytes_written: int = 0
    content: bytes | None = None  # final content (None: absent at the end)

    def add(self, op: str) -> None:
        if op == "write" and self.ops and self.ops[-1] == "write":
            return  # coalesce: 100 writes of a line == one write of 100 lines
        self.ops.append(op)


@dataclass
class ConnObs:
    kind: str  # "tcp", "unix", "pipe", ...
    remote: str
    sent: bytearray = field(default_factory=bytearray)
    received: bytearray = field(default_factory=bytearray)
    truncated: bool = False


@dataclass
class ProcObs:
    pid: int
    argv: tuple[str, ...] = ()
    exit_code: int | None = None
    signal: int | None = None
    children: list[ProcObs] = field(default_factory=list)


@dataclass
class Obs:
    stdout: bytes = b""
    stderr: bytes = b""
    exit_code: int | None = None
    files: dict[str, FileObs] = field(default_factory=dict)  # first-touch order
    reads: dict[str, int] = field(default_factory=dict)  # path only read -> times opened
    connections: list[ConnObs] = field(default_factory=list)
    listening: list[str] = field(default_factory=list)
    root: ProcObs | None = None
    syscalls: int = 0
    io_bytes: int = 0
    lost_events: int = 0
    edges: list[tuple[str, str, str]] = field(default_factory=list)  # (kind, from role, to role): data flow


def normalize_endpoint(addr: str) -> str:
    """Loopback hosts -> "loopback", ephemeral ports (>= 32768) -> "ephemeral". '127.0.0.1:40000' -> 'loopback:ephemeral'."""
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
    return f"{host}:{'ephemeral' if p >= 32768 else port}"


class _Extractor:
    def __init__(self, workdir: str, home: str | None, program_files: frozenset[str], capture_stdio: bool = False) -> None:
        self.workdir = os.path.realpath(workdir)
        self.home = home
        self.program_files = program_files  # the programs and scripts named on command lines: runtime, not I/O
        self.runtime_prefixes: set[str] = set()  # PREFIX of every exec'd PREFIX/bin/program (venvs, /usr/local)
        self._rel_cache: dict[str, str | None] = {}
        self.capture_stdio = capture_stdio  # rebuild stdout/stderr from write payloads (no harness capture)
        self.obs = Obs()
        self.fds: dict[int, dict[int, tuple[str, object]]] = {}  # pid -> fd -> (kind, key)
        self.cwd: dict[int, str] = {}
        self.procs: dict[int, ProcObs] = {}
        self.conns: dict[int, ConnObs] = {}
        self.next_id = 0

    # --- paths ---
    def resolve(self, pid: int, path: str, dirfd: int = AT_FDCWD) -> str:
        if not path.startswith("/"):
            base = self.cwd.get(pid, self.workdir)
            if dirfd != AT_FDCWD:
                res = self.fds.get(pid, {}).get(dirfd)
                if res and res[0] == "file":
                    base = str(res[1])
            path = os.path.join(base, path)
        return os.path.normpath(path)

    def relative(self, path: str) -> str | None:
        """Workdir-relative "./x" for paths inside it, the absolute path elsewhere; None if not observable.

        Memoised: a run touches few distinct paths many times (every write goes through here)."""
        try:
            return self._rel_cache[path]
        except KeyError:
            rel = self._rel_cache[path] = self._relative(path)
            return rel

    def _relative(self, path: str) -> str | None:
        if path == self.workdir or path.startswith(self.workdir + "/"):
            rel = "./" + os.path.relpath(path, self.workdir)
            return None if any(p in rel + "/" for p in IGNORED_PARTS) else rel.replace("/./", "/")
        if path.startswith(IGNORED_PREFIXES) or any(p in path + "/" for p in IGNORED_PARTS):
            return None
        if any(path.startswith(p) for p in self.runtime_prefixes):
            return None  # an interpreter's own installation (a venv's pyvenv.cfg, its lib/)
        if self.home and path.startswith(self.home + "/."):
            return None  # dotfiles and caches in $HOME belong to runtimes and tools
        return path

    def file(self, path: str) -> FileObs:
        f = self.obs.files.get(path)
        if f is None:
            f = self.obs.files[path] = FileObs(path)
        return f

    def proc(self, pid: int) -> ProcObs:
        p = self.procs.get(pid)
        if p is None:
            p = self.procs[pid] = ProcObs(pid)
            self.fds.setdefault(pid, {0: ("stdio", 0), 1: ("stdio", 1), 2: ("stdio", 2)})
        return p

    def new_conn(self, kind: str, remote: str) -> int:
        self.next_id += 1
        self.conns[self.next_id] = c = ConnObs(kind, remote)
        self.obs.connections.append(c)
        return self.next_id

    # --- events ---
    def process_event(self, e: ProcessEvent) -> None:
        p = self.proc(e.h.pid)
        if e.type is ProcessEventType.FORK:
            child = self.proc(e.child_pid)
            self.fds[e.child_pid] = dict(self.fds.get(e.h.pid, {}))
            self.cwd[e.child_pid] = self.cwd.get(e.h.pid, self.workdir)
            child.argv = child.argv or p.argv
            p.children.append(child)
        elif e.type is ProcessEventType.EXEC:
            p.argv = tuple(a.replace(self.workdir, ".") for a in e.argv)
            cwd = self.cwd.get(e.h.pid, self.workdir)
            self.program_files |= {os.path.normpath(os.path.join(cwd, x)) for x in (e.filename, *e.argv[:3]) if x}
            bindir = os.path.dirname(os.path.normpath(os.path.join(cwd, e.filename)))
            if os.path.basename(bindir) == "bin" and os.path.dirname(bindir) not in ("/", "/usr"):
                self.runtime_prefixes.add(os.path.dirname(bindir) + "/")
                self._rel_cache.clear()  # earlier answers may now be runtime files
        elif e.type is ProcessEventType.EXIT and e.exit_code is not None:
            p.exit_code = e.exit_code
        elif e.type is ProcessEventType.WAIT:
            reaped = self.procs.get(e.child_pid)
            if reaped is not None:
                reaped.exit_code = reaped.exit_code if e.exit_code is None else e.exit_code
                reaped.signal = e.signal

    def syscall(self, s: SyscallSpan) -> None:
        self.obs.syscalls += 1
        pid, name, a, ret = s.h.pid, s.name, s.args, s.ret
        self.proc(pid)
        fds = self.fds[pid]
        if ret < 0 and name != "connect":
            return
        if name in ("open", "openat", "openat2", "creat"):
            flags = a.get("flags", O_CREAT | 1) if name != "creat" else O_CREAT | 1
            assert isinstance(flags, int)
            dirfd = a.get("dirfd", AT_FDCWD)
            path = self.resolve(pid, str(a.get("path", "")), dirfd if isinstance(dirfd, int) else AT_FDCWD)
            fds[ret] = ("file", path)
            rel = self.relative(path)
            if rel is None:
                return
            if flags & O_ACCMODE or flags & (O_CREAT | O_TRUNC):
                f = self.file(rel)
                if flags & O_CREAT and not f.ops:
                    f.add("create")
                if flags & O_TRUNC:
                    f.add("truncate")
            elif rel not in self.obs.files and path not in self.program_files and not (
                    flags & O_DIRECTORY and not rel.startswith("./")):
                self.obs.reads[rel] = self.obs.reads.get(rel, 0) + 1
        elif name in ("write", "pwrite64", "writev", "pwritev", "pwritev2", "sendto", "sendmsg"):
            self.obs.io_bytes += ret
            res = fds.get(int(a.get("fd", -1) or 0))  # type: ignore[arg-type]
            if res is None or res[0] == "stdio":
                if res is not None and self.capture_stdio and res[1] in (1, 2) and s.payload:
                    if res[1] == 1:
                        self.obs.stdout += s.payload
                    else:
                        self.obs.stderr += s.payload
                return  # otherwise stdout/stderr are captured whole by the harness
            if res[0] == "file":
                rel = self.relative(str(res[1]))
                if rel is not None:
                    f = self.file(rel)
                    f.add("write")
                    f.bytes_written += ret
            elif res[0] == "conn":
                c = self.conns[int(res[1])]  # type: ignore[call-overload]
                c.sent += s.payload or b""
                c.truncated |= len(s.payload or b"") < ret
        elif name in ("read", "pread64", "readv", "preadv", "preadv2", "recvfrom", "recvmsg"):
            self.obs.io_bytes += ret
            res = fds.get(int(a.get("fd", -1) or 0))  # type: ignore[arg-type]
            if res is not None and res[0] == "conn":
                c = self.conns[int(res[1])]  # type: ignore[call-overload]
                c.received += s.payload or b""
                c.truncated |= len(s.payload or b"") < ret
        elif name == "close":
            fds.pop(int(a.get("fd", -1) or 0), None)  # type: ignore[arg-type]
        elif name in ("dup", "dup2", "dup3") or (name == "fcntl" and a.get("cmd") in (F_DUPFD, F_DUPFD_CLOEXEC)):
            old = fds.get(int(a.get("oldfd", a.get("fd", -1)) or 0))  # type: ignore[arg-type]
            if old is not None:
                fds[ret] = old
        elif name in ("pipe", "pipe2", "socketpair"):
            pair = a.get("pipefd", a.get("sv"))
            if isinstance(pair, tuple) and len(pair) == 2:
                cid = self.new_conn("pipe" if name != "socketpair" else "socketpair", "local")
                self.obs.connections.pop()  # local plumbing between our own processes: not observable
                fds[int(pair[0])] = fds[int(pair[1])] = ("local", cid)
        elif name == "socket":
            fds[ret] = ("socket", None)
        elif name == "connect" and (ret == 0 or ret == -EINPROGRESS):
            remote = normalize_endpoint(str(a.get("addr", "")))
            fd = int(a.get("fd", -1) or 0)  # type: ignore[arg-type]
            kind = "unix" if remote.startswith("unix:") else "tcp"
            fds[fd] = ("conn", self.new_conn(kind, remote))
        elif name in ("accept", "accept4"):
            fds[ret] = ("conn", self.new_conn("tcp-accepted", normalize_endpoint(str(a.get("addr", "")))))
        elif name == "bind":
            self.obs.listening.append(normalize_endpoint(str(a.get("addr", ""))))
        elif name in ("rename", "renameat", "renameat2"):
            src = self.relative(self.resolve(pid, str(a.get("oldpath", ""))))
            dst = self.relative(self.resolve(pid, str(a.get("newpath", ""))))
            if src:
                self.file(src).add(f"rename->{dst}")
            if dst:
                self.file(dst).add(f"renamed<-{src}")
        elif name in ("unlink", "unlinkat", "rmdir"):
            flags = a.get("flags", 0)
            rel = self.relative(self.resolve(pid, str(a.get("path", ""))))
            if rel:
                is_dir = name == "rmdir" or (isinstance(flags, int) and flags & AT_REMOVEDIR)
                self.file(rel).add("rmdir" if is_dir else "delete")
        elif name in ("mkdir", "mkdirat"):
            rel = self.relative(self.resolve(pid, str(a.get("path", ""))))
            if rel:
                self.file(rel).add("mkdir")
        elif name in ("truncate", "ftruncate"):
            target = fds.get(int(a.get("fd", -1) or 0)) if "path" not in a else ("file", str(a["path"]))  # type: ignore[arg-type]
            if target and target[0] == "file":
                trel = self.relative(self.resolve(pid, str(target[1])))
                if trel:
                    self.file(trel).add("truncate")
        elif name == "chdir":
            self.cwd[pid] = self.resolve(pid, str(a.get("path", "")))


def extract(events: Iterable[Event], workdir: str, root_pid: int, stdout: bytes = b"", stderr: bytes = b"",
            exit_code: int | None = None, home: str | None = None, capture_stdio: bool = False) -> Obs:
    """Obs of one run from its events (any order: sorted by monotonic time here).

    ``capture_stdio``: rebuild stdout/stderr from the captured write payloads (traces read back from a store,
    where the harness did not capture them)."""
    ex = _Extractor(workdir, home if home is not None else os.path.expanduser("~"), frozenset(), capture_stdio)
    ex.obs.stdout, ex.obs.stderr, ex.obs.exit_code = stdout, stderr, exit_code
    ex.proc(root_pid)
    evs = list(events)
    if any(evs[i].h.mono_ns > evs[i + 1].h.mono_ns for i in range(len(evs) - 1)):
        evs.sort(key=lambda e: (e.h.mono_ns, e.h.event_id))  # arrival is usually already in time order
    for e in evs:
        if isinstance(e, SyscallSpan):
            ex.syscall(e)
        elif isinstance(e, ProcessEvent):
            ex.process_event(e)
    ex.obs.root = ex.procs[root_pid]
    ex.obs.root.exit_code = exit_code
    for rel, f in ex.obs.files.items():
        if rel.startswith("./"):
            full = os.path.join(ex.workdir, rel[2:])
            try:
                with open(full, "rb") as fh:
                    f.content = fh.read()
            except (IsADirectoryError, FileNotFoundError, NotADirectoryError, PermissionError):
                f.content = None
    return ex.obs


def edge_roles(trace: UnifiedTrace, root: tuple[str, int], workdir: str = "") -> list[tuple[str, str, str]]:
    """The distinct data-flow edges (pipe, TCP) between process roles: "root" for the program under test,
    the normalised argv for the others. Distinct, not counted: how many writes carry the data is buffering."""
    role: dict[bytes, str] = {}
    for key, p in trace.processes.items():
        name = "root" if key == root else " ".join(a.replace(workdir, ".") if workdir else a for a in p.argv)
        for e in p.events:
            role[e.h.event_id] = name
    out = {(e.kind.name, role[e.src], role[e.dst]) for e in trace.edges
           if e.kind in (EdgeKind.PIPE, EdgeKind.TCP) and e.src in role and e.dst in role and role[e.src] != role[e.dst]}
    return sorted(out)
