"""The ptrace fallback: Debian's strace in its machine-parseable mode, feeding the same event stream.

For machines where eBPF is not permitted (no root/CAP_BPF, no headers, no tracefs). strace runs with
``-f -qq -ttt -T -xx -X raw`` (epoch µs timestamps, durations, every string byte hex-escaped, numeric
arguments) and writes to a FIFO that a reader thread parses line by line, joining -f's
"<unfinished ...>"/"<... resumed>" halves. Aggregates are computed from the full stream, so -c is exact.
It costs ~65 µs per syscall (measured here) instead of eBPF's ~0.3 µs.
"""

from __future__ import annotations

import os
import random
import re
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from sysweave.agents.bpf.syscalls import CaptureError
from sysweave.agents.proctree import ProcessTree
from sysweave.agents.records import CLONE_THREAD
from sysweave.agents.session import CaptureOptions, CaptureResult, SignalForwarder, host_identity, wait_contained
from sysweave.agents.syscall_args import ARG_SPECS, NR_BY_NAME
from sysweave.schemas.events import (
    ArgValue,
    CausalStamp,
    Event,
    EventHeader,
    HostInfo,
    ProcessEvent,
    ProcessEventType,
    SampleReason,
    SyscallAggregate,
    SyscallSpan,
    make_event_id,
)

__all__ = ["PtraceCapture", "StraceParser", "unescape"]

_LINE = re.compile(r"^(?P<pid>\d+)\s+(?P<ts>\d+\.\d+)\s+(?P<rest>.*)$")
_CALL = re.compile(r"^(?P<name>\w+)\((?P<args>.*)\)\s+=\s+(?P<ret>-?\d+|0x[0-9a-f]+|\?)(?:\s+(?P<err>E[A-Z0-9]+)\s*\(.*?\))?"
                   r"(?:.*?)?(?:\s+<(?P<dur>\d+\.\d+)>)?$")
_UNFINISHED = re.compile(r"^(?P<head>.*?)\s*<unfinished \.\.\.>$")
_RESUMED = re.compile(r"^<\.\.\. (?P<name>\w+) resumed>\s*(?P<tail>.*)$")
_EXITED = re.compile(r"^\+\+\+ (?:exited with (?P<code>\d+)|killed by (?P<sig>SIG\w+)(?: \(core dumped\))?) \+\+\+$")
_STRING = re.compile(r'"((?:[^"\\]|\\.)*)"')
_ESC = re.compile(r"\\x([0-9a-f]{2})|\\(.)")


def unescape(s: str) -> bytes:
    """strace -xx string body -> bytes."""
    out = bytearray()
    pos = 0
    for m in _ESC.finditer(s):
        out += s[pos:m.start()].encode("utf-8", "surrogateescape")
        if m.group(1):
            out.append(int(m.group(1), 16))
        else:
            out += {"n": b"\n", "t": b"\t", "r": b"\r", "\\": b"\\", '"': b'"'}.get(m.group(2), m.group(2).encode())
        pos = m.end()
    out += s[pos:].encode("utf-8", "surrogateescape")
    return bytes(out)


def _errno_value(name: str) -> int:
    import errno

    return int(getattr(errno, name, 0)) or 1


@dataclass(slots=True)
class StraceParser:
    """Parses strace lines into events; keeps exact per-(pid, syscall) aggregates of everything it saw."""

    host_id: str
    producer_id: int
    seq: int = 0
    pending: dict[int, str] = field(default_factory=dict)
    aggs: dict[tuple[int, str], list[int]] = field(default_factory=dict)  # calls, errors, total_ns, hist...
    unparsed: int = 0

    def _header(self, pid: int, ts_ns: int, dur: int) -> EventHeader:
        self.seq += 1
        return EventHeader(make_event_id(self.producer_id, self.seq), self.host_id, pid, pid, ts_ns, ts_ns, dur,
                           CausalStamp(self.seq, 0))

    def parse(self, line: str) -> list[Event]:
        m = _LINE.match(line.rstrip("\n"))
        if not m:
            self.unparsed += bool(line.strip())
            return []
        pid, rest = int(m["pid"]), m["rest"]
        sec, _, frac = m["ts"].partition(".")
        ts_ns = int(sec) * 1_000_000_000 + int(frac.ljust(9, "0")[:9])
        if u := _UNFINISHED.match(rest):
            self.pending[pid] = u["head"]
            return []
        if r := _RESUMED.match(rest):
            rest = self.pending.pop(pid, r["name"] + "(") + r["tail"]
        if x := _EXITED.match(rest):
            sig = getattr(signal, x["sig"], None) if x["sig"] else None
            return [ProcessEvent(self._header(pid, ts_ns, 0), ProcessEventType.EXIT,
                                 exit_code=int(x["code"]) if x["code"] else None, signal=int(sig) if sig else None)]
        c = _CALL.match(rest)
        if not c:
            self.unparsed += not rest.startswith(("---", "+++"))
            return []
        return self._call(pid, ts_ns, c)

    def _call(self, pid: int, ts_ns: int, c: re.Match[str]) -> list[Event]:
        name, raw_args = c["name"], c["args"]
        dur = round(float(c["dur"]) * 1e9) if c["dur"] else 0
        if c["ret"] == "?":
            ret = 0
        elif c["err"]:
            ret = -_errno_value(c["err"])
        else:
            ret = int(c["ret"], 0)
        agg = self.aggs.setdefault((pid, name), [0, 0, 0] + [0] * 40)
        agg[0] += 1
        agg[1] += 1 if c["err"] else 0
        agg[2] += dur
        agg[3 + min(max(dur, 1).bit_length() - 1, 39)] += 1
        strings = [unescape(s) for s in _STRING.findall(raw_args)]
        args: dict[str, ArgValue] = {"raw": raw_args}
        payload = None
        spec = ARG_SPECS.get(name, ())
        parts = [p.strip() for p in raw_args.split(",")]
        si = 0
        for i, (arg, kind) in enumerate(spec):
            if kind in ("path", "path2", "buf") and si < len(strings):
                if kind == "buf":
                    payload = strings[si]
                else:
                    args[arg] = strings[si].decode("utf-8", "surrogateescape")
                si += 1
            elif kind in ("fd", "at", "int") and i < len(parts) and re.fullmatch(r"-?\d+", parts[i]):
                args[arg] = int(parts[i])
        h = self._header(pid, ts_ns, dur)
        span = SyscallSpan(h, NR_BY_NAME.get(name, -1), name, ret, args, payload, max(ret, 0) if payload is not None else 0,
                           int(SampleReason.ALL))
        out: list[Event] = [span]
        if name in ("clone", "clone3", "fork", "vfork") and ret > 0:
            ptype = ProcessEventType.THREAD if ("CLONE_THREAD" in raw_args or f"{CLONE_THREAD:#x}" in raw_args) \
                else ProcessEventType.FORK
            out.append(ProcessEvent(self._header(pid, ts_ns, 0), ptype, parent_pid=pid, child_pid=ret))
        elif name in ("execve", "execveat") and ret == 0:
            argv = tuple(s.decode("utf-8", "surrogateescape") for s in strings[1:])
            out.append(ProcessEvent(self._header(pid, ts_ns, 0), ProcessEventType.EXEC,
                                    filename=strings[0].decode("utf-8", "surrogateescape") if strings else "", argv=argv))
        return out

    def aggregates(self) -> list[SyscallAggregate]:
        out = []
        for i, ((pid, name), a) in enumerate(sorted(self.aggs.items())):
            h = EventHeader(make_event_id(self.producer_id, (1 << 62) + i), self.host_id, pid, pid, 0, 0)
            out.append(SyscallAggregate(h, NR_BY_NAME.get(name, -1), name, a[0], a[1], a[2], tuple(a[3:])))
        return out


class PtraceCapture:
    def __init__(self, options: CaptureOptions, sink: Callable[[Event], None]) -> None:
        self.options = options
        self.sink = sink
        self.parser = StraceParser(options.host_id or host_identity(), random.getrandbits(64))
        self.shipped = 0

    def _strace_argv(self, out: str) -> list[str]:
        argv = ["strace", "-qq", "-f", "-ttt", "-T", "-xx", "-X", "raw", "-s", str(self.options.payload_cap), "-o", out]
        return argv

    def _read(self, path: str) -> None:
        with open(path, errors="surrogateescape") as f:
            for line in f:
                for ev in self.parser.parse(line):
                    self.shipped += 1
                    self.sink(ev)

    def _run(self, extra: list[str], on_signal: Callable[[subprocess.Popen[bytes], int], None] | None) -> tuple[int, int]:
        """strace with ``extra``; ``on_signal`` None: strace and the command it starts are contained
        (proctree) and a signal stops the whole tree like the eBPF backend's run_command does."""
        with tempfile.TemporaryDirectory(prefix="sysweave-strace-") as tmp:
            fifo = os.path.join(tmp, "trace")
            os.mkfifo(fifo)
            try:
                tree = ProcessTree.start(self._strace_argv(fifo) + extra) if on_signal is None else None
                proc = tree.popen if tree is not None else subprocess.Popen(self._strace_argv(fifo) + extra)
            except OSError as exc:
                raise CaptureError(f"cannot start strace for the ptrace backend: {exc} (apt-get install strace)") from exc
            reader = threading.Thread(target=self._read, args=(fifo,), daemon=True)
            reader.start()
            if tree is not None:
                try:
                    wait_status = wait_contained(tree, None)[0]
                finally:
                    tree.close()
                status = -os.WTERMSIG(wait_status) if os.WIFSIGNALED(wait_status) else os.WEXITSTATUS(wait_status)
            else:
                assert on_signal is not None
                with SignalForwarder(lambda s: on_signal(proc, s)):
                    status = proc.wait()
            reader.join(30)
        return (128 - status if status < 0 else status), proc.pid

    def run_command(self, argv: list[str]) -> CaptureResult:
        code, pid = self._run(["--", *argv], None)
        return self._result(code, pid)

    def attach(self, pids: list[int], stop: threading.Event) -> CaptureResult:
        extra = [a for pid in pids for a in ("-p", str(pid))]
        _code, pid = self._run(extra, lambda p, _s: p.send_signal(signal.SIGINT))  # strace detaches on SIGINT
        return self._result(0, pids[0] if pids else pid)

    def _result(self, code: int, root: int) -> CaptureResult:
        aggs = self.parser.aggregates()
        lost = {"unparsed_lines": self.parser.unparsed}
        # strace's -ttt times are wall clock: mono_ns = wall_ns for these events, so the anchor offset is 0
        h = EventHeader(make_event_id(self.parser.producer_id, (1 << 62) - 1), self.parser.host_id, root, root,
                        time.time_ns(), time.time_ns())
        host = HostInfo(h, socket.gethostname(), kernel=os.uname().release, arch=os.uname().machine, backend="ptrace")
        return CaptureResult("ptrace", code, aggs, lost, self.shipped, root, [host])
