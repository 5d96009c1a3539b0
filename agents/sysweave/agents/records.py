"""Decode the kernel program's ring-buffer records into schema events (pure: no bcc, testable anywhere).

Record layout: ``struct rec`` in bpf/syscalls.h, little-endian, derived from the header at import
(bpf/contract.py)::

    u32 type, pid(tgid), tid, nr | u64 ts(monotonic ns at entry), dur(ns) | s64 ret | u64 args[6]
    u32 reason, len1, len2, aux | char d1[PATH_CAP] | char d2[len2]

:class:`RecordDecoder` is stateful per capture session: it pairs exec argument vectors (read at sys_enter)
with the exec that succeeded, remembers exit_group codes until the process dies, and numbers events.
"""

from __future__ import annotations

import ipaddress
import socket
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field

from sysweave.agents.bpf.contract import contract
from sysweave.agents.syscall_args import ARG_SPECS
from sysweave.schemas.errors import AgentError
from sysweave.schemas.events import (
    ArgValue,
    CausalStamp,
    Event,
    EventHeader,
    ProcessEvent,
    ProcessEventType,
    SyscallSpan,
    make_event_id,
)
from sysweave.schemas.syscall_table_x86_64 import SYSCALL_ARG_COUNTS, SYSCALL_NAMES_X86_64

__all__ = ["CLONE_THREAD", "EA_ARGV_FAULT", "EA_ARGV_TRUNCATED", "EA_PATH_FAULT", "HDR_SIZE", "REC_EXEC",
           "REC_EXEC_ARGS", "REC_SYSCALL", "RawRecord", "RecordDecoder", "RecordError", "decode_args",
           "decode_sockaddr", "exec_identity", "exit_status_fields", "parse_record"]

_C = contract()
REC_SYSCALL, REC_EXEC_ARGS, REC_FORK, REC_EXEC, REC_EXIT = (
    _C["REC_SYSCALL"], _C["REC_EXEC_ARGS"], _C["REC_FORK"], _C["REC_EXEC"], _C["REC_EXIT"])
EA_PATH_FAULT, EA_ARGV_FAULT, EA_ARGV_TRUNCATED = _C["EA_PATH_FAULT"], _C["EA_ARGV_FAULT"], _C["EA_ARGV_TRUNCATED"]
EXIT_STATUS_KNOWN, OFFSET_UNKNOWN = _C["EXIT_STATUS_KNOWN"], _C["OFFSET_UNKNOWN"]
EXIT_SIGNAL_DELIVERED = _C["EXIT_SIGNAL_DELIVERED"]
# struct rec up to d1 (the fixed header); field positions by name, so a reordered header still decodes
_HDR, _NAMES = _C.fixed_prefix("rec")
HDR_SIZE = _HDR.size
_I = {name: i for i, name in enumerate(_NAMES)}
_TYPE, _PID, _TID, _NR, _TS, _DUR, _RET = (_I[n] for n in ("type", "pid", "tid", "nr", "ts", "dur", "ret"))
_ARGS, _REASON, _LEN1, _LEN2, _AUX = _I["args0"], _I["reason"], _I["len1"], _I["len2"], _I["aux"]
CLONE_THREAD = 0x10000
_FORKING = frozenset({"clone", "clone3", "fork", "vfork"})


def exit_status_fields(status: int) -> dict[str, int | None]:
    """A wait status as ProcessEvent fields: ``{"exit_code": 3, "signal": None}`` for an exit with code 3,
    ``{"exit_code": None, "signal": 9}`` for death by SIGKILL (the core-dump bit 0x80 dropped).

    >>> exit_status_fields(3 << 8), exit_status_fields(0x80 | 6)
    ({'exit_code': 3, 'signal': None}, {'exit_code': None, 'signal': 6})
    """
    if status & 0x7F == 0:
        return {"exit_code": (status >> 8) & 0xFF, "signal": None}
    return {"exit_code": None, "signal": status & 0x7F}


class RecordError(AgentError, ValueError):
    """A ring-buffer record that does not match the expected layout (a kernel/user-space version skew)."""


@dataclass(slots=True)
class RawRecord:
    type: int
    pid: int
    tid: int
    nr: int
    ts: int
    dur: int
    ret: int
    args: tuple[int, ...]
    reason: int
    d1: bytes
    d2: bytes
    aux: int


def parse_record(data: bytes, path_cap: int) -> RawRecord:
    if len(data) < HDR_SIZE + path_cap:
        raise RecordError(f"ring-buffer record of {len(data)} bytes is shorter than its header ({HDR_SIZE + path_cap})")
    f = _HDR.unpack_from(data)
    len1, len2 = f[_LEN1], f[_LEN2]
    d1 = data[HDR_SIZE:HDR_SIZE + min(len1, path_cap)]
    d2 = data[HDR_SIZE + path_cap:HDR_SIZE + path_cap + len2]
    return RawRecord(f[_TYPE], f[_PID], f[_TID], f[_NR], f[_TS], f[_DUR], f[_RET], f[_ARGS:_ARGS + 6], f[_REASON],
                     d1, d2, f[_AUX])


def _cstr(b: bytes) -> str:
    return b.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")


def decode_sockaddr(raw: bytes) -> str:
    """struct sockaddr -> "1.2.3.4:80", "[::1]:443", "unix:/path", "unix:@abstract", or "family=N"."""
    if len(raw) < 2:
        return ""
    family = int.from_bytes(raw[:2], "little")
    if family == socket.AF_INET and len(raw) >= 8:
        return f"{ipaddress.IPv4Address(raw[4:8])}:{int.from_bytes(raw[2:4], 'big')}"
    if family == socket.AF_INET6 and len(raw) >= 24:
        return f"[{ipaddress.IPv6Address(raw[8:24])}]:{int.from_bytes(raw[2:4], 'big')}"
    if family == socket.AF_UNIX:
        path = raw[2:]
        if path[:1] == b"\0":
            return "unix:@" + path[1:].split(b"\0", 1)[0].decode("utf-8", "replace")
        return "unix:" + _cstr(path)
    return f"family={family}"


def _signed(v: int) -> int:
    return v - (1 << 64) if v >= 1 << 63 else v


def _signed32(v: int) -> int:
    v &= 0xFFFFFFFF
    return v - (1 << 32) if v >= 1 << 31 else v


def decode_args(name: str, rec: RawRecord) -> tuple[dict[str, ArgValue], bytes | None, int]:
    """Arguments by name, plus (payload, payload_len) for calls that move bytes."""
    spec = ARG_SPECS.get(name)
    payload: bytes | None = None
    payload_len = 0
    if spec is None:
        raw: dict[str, ArgValue] = {f"arg{i}": rec.args[i] for i in range(SYSCALL_ARG_COUNTS.get(name, 6))}
        if name in ("sendfile", "splice") and rec.ret > 0 and rec.aux != OFFSET_UNKNOWN:
            raw["offset_after"] = rec.aux  # the in file's offset after the call: it moved [that - ret, that)
        if name == "vmsplice":  # the first iovec's bytes, as for writev
            raw["iovcnt"] = rec.aux
            return raw, rec.d2, max(rec.ret, 0)
        return raw, None, 0
    out: dict[str, ArgValue] = {}
    for i, (arg, kind) in enumerate(spec):
        v = rec.args[i]
        if kind in ("fd", "at", "int", "sig"):
            out[arg] = _signed32(v)
        elif kind == "long":
            out[arg] = _signed(v)
        elif kind == "path":
            out[arg] = _cstr(rec.d1)
        elif kind == "path2":
            out[arg] = _cstr(rec.d2)
        elif kind == "buf":
            payload = rec.d2
            payload_len = max(rec.ret, 0)
        elif kind == "addr":
            out[arg] = decode_sockaddr(rec.d1) if rec.d1 else ("NULL" if v == 0 else "")
        elif kind == "fds":
            if len(rec.d1) >= 8:
                out[arg] = struct.unpack("<2i", rec.d1[:8])
        elif kind == "wstatus":
            out[arg] = rec.aux if rec.ret > 0 else None
        else:  # hex, oflags, mode, size, ptr
            out[arg] = v
    if name in ("sendmsg", "recvmsg") and rec.d1:  # msg_name: a datagram's destination / source
        out["dest_addr" if name == "sendmsg" else "src_addr"] = decode_sockaddr(rec.d1)
    if name in ("writev", "readv", "sendmsg", "recvmsg", "pwritev", "preadv", "pwritev2", "preadv2"):
        out["iovcnt"] = rec.aux
    if name == "clone3":
        out["flags"] = rec.aux
    return out, payload, payload_len


def exec_identity(filename: str, image_argv: tuple[str, ...],
                  entered: tuple[str, tuple[str, ...], int] | None) -> tuple[str, tuple[str, ...]]:
    """The (path, argv) an exec was called with.

    sys_enter's copy (``entered``: path, argv, EA_* faults) is what the caller passed, also for a ``#!`` script
    (whose new image's argv starts with the interpreter), so it wins where it was read whole.  What it could
    not read (pages the child had not touched) comes from the exec tracepoint: the filename the kernel
    resolved, and argv from the new image (identical for every binary but scripts)."""
    if entered is None:
        return filename, image_argv or (filename,)
    path, argv, faults = entered
    if faults & EA_PATH_FAULT:
        path = filename
    if faults & (EA_ARGV_FAULT | EA_ARGV_TRUNCATED) and len(image_argv) >= len(argv):
        argv = image_argv
    return path, argv


@dataclass(slots=True)
class RecordDecoder:
    """Turns raw records into events. ``wall_offset_ns`` = CLOCK_REALTIME - CLOCK_MONOTONIC at start."""

    host_id: str
    producer_id: int
    wall_offset_ns: int
    path_cap: int
    seq: int = 0
    exec_args: dict[int, tuple[str, tuple[str, ...], int]] = field(default_factory=dict)  # tid -> (file, argv, EA_*)
    exit_codes: dict[int, int] = field(default_factory=dict)  # tgid -> exit_group status
    last_exec: dict[int, tuple[str, tuple[str, ...]]] = field(default_factory=dict)  # tid -> the exec that succeeded
    parent_of: dict[int, int] = field(default_factory=dict)  # child pid/tid -> parent tgid, from the fork hook
    exec_env: dict[int, tuple[str, ...]] = field(default_factory=dict)  # tgid -> its SYSWEAVE_*/TRACEPARENT env
    bad_records: int = 0

    def _header(self, rec: RawRecord) -> EventHeader:
        self.seq += 1
        return EventHeader(make_event_id(self.producer_id, self.seq), self.host_id, rec.pid, rec.tid,
                           rec.ts, rec.ts + self.wall_offset_ns, rec.dur, CausalStamp(self.seq, 0))

    def decode(self, data: bytes) -> Iterator[Event]:
        try:
            rec = parse_record(data, self.path_cap)
        except RecordError:
            self.bad_records += 1
            return
        if rec.type == REC_SYSCALL:
            name = SYSCALL_NAMES_X86_64.get(rec.nr, f"syscall_{rec.nr}")
            args, payload, plen = decode_args(name, rec)
            if name in ("execve", "execveat") and rec.ret == 0 and rec.tid in self.last_exec:
                # registers at exit belong to the new image: take what sys_enter captured
                path, argv = self.last_exec.pop(rec.tid)
                args = {"path": path, "argv": argv}
            elif name in ("execve", "execveat") and rec.ret < 0 and rec.tid in self.exec_args:
                # a failed exec (a PATH search tries several): what sys_enter read, the filename re-read at
                # exit where sys_enter could not (argv pages untouched by the child stay unreadable: [])
                path, argv, faults = self.exec_args.pop(rec.tid)
                args = {"path": _cstr(rec.d1) if faults & EA_PATH_FAULT else path, "argv": argv}
            if name == "exit_group":
                self.exit_codes[rec.pid] = _signed32(rec.args[0]) & 0xFF
            span = SyscallSpan(self._header(rec), rec.nr, name, rec.ret, args, payload, plen, rec.reason)
            yield span
            if name in _FORKING and rec.ret > 0:
                flags = rec.aux if name == "clone3" else (rec.args[0] if name == "clone" else 0)
                kind = ProcessEventType.THREAD if flags & CLONE_THREAD else ProcessEventType.FORK
                yield ProcessEvent(self._header(rec), kind, parent_pid=rec.pid, child_pid=rec.ret)
            elif name == "wait4" and rec.ret > 0:
                status = rec.aux
                code, sig = ((status >> 8) & 0xFF, None) if status & 0x7F == 0 else (None, status & 0x7F)
                yield ProcessEvent(self._header(rec), ProcessEventType.WAIT, parent_pid=rec.pid,
                                   child_pid=rec.ret, exit_code=code, signal=sig)
        elif rec.type == REC_EXEC_ARGS:
            argv = tuple(a.decode("utf-8", "surrogateescape") for a in rec.d2.split(b"\0")[: rec.aux])
            self.exec_args[rec.tid] = (_cstr(rec.d1), argv, rec.reason)
        elif rec.type == REC_EXEC:
            filename = _cstr(rec.d1)
            env_at = rec.args[1] - 1 if 0 < rec.args[1] <= len(rec.d2) else len(rec.d2)  # env entries after argv
            if env_at < len(rec.d2):
                self.exec_env[rec.pid] = tuple(x.decode("utf-8", "surrogateescape")
                                               for x in rec.d2[env_at:].split(b"\0") if b"=" in x)
            else:
                self.exec_env.pop(rec.pid, None)
            image_argv = tuple(a.decode("utf-8", "surrogateescape")
                               for a in rec.d2[:env_at].split(b"\0")[: rec.args[0]])
            # old_pid (aux) differs from tid when a non-leader thread execs
            entered = self.exec_args.pop(rec.aux, None) or self.exec_args.pop(rec.tid, None)
            path, argv = exec_identity(filename, image_argv, entered)
            self.last_exec[rec.tid] = (path, argv)
            yield ProcessEvent(self._header(rec), ProcessEventType.EXEC, filename=filename, argv=argv)
        elif rec.type == REC_EXIT:
            code = self.exit_codes.pop(rec.pid, None)
            if rec.reason & EXIT_STATUS_KNOWN:  # the kernel's record: right even for a plain exit() or a signal
                fields = exit_status_fields(rec.ret)
                yield ProcessEvent(self._header(rec), ProcessEventType.EXIT, exit_code=fields["exit_code"],
                                   signal=fields["signal"])
            elif rec.reason & EXIT_SIGNAL_DELIVERED and code is None:  # bcc: killed by this signal
                yield ProcessEvent(self._header(rec), ProcessEventType.EXIT, exit_code=None, signal=rec.ret & 0x7F)
            else:  # exit_group's status (it wins over a SIGKILL its zapped threads were delivered), or unknown
                yield ProcessEvent(self._header(rec), ProcessEventType.EXIT, exit_code=code)
        elif rec.type == REC_FORK:
            # no event: the parent's clone/fork exit record carries the same fact with the thread flag, but
            # only after the child may have run; routing (publisher.root) needs the parent now
            self.parent_of[rec.aux] = rec.pid
