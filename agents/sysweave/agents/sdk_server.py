"""The receiving end of the in-app SDK: a unix datagram socket that the traced programs write to.

``sysweave trace`` and ``sysweave agent`` start an :class:`SdkServer` before the command and announce its
socket in ``SYSWEAVE_SDK_SOCKET`` (inherited by the command and its children). The socket lives in a fresh
0700 directory and is itself 0600, so only the tracing user (the traced program's user) can reach it.

Each datagram is one event in the schema codec's ``[version, event]`` form (docs/sdk.md, byte by byte): a
``ComputeBlock``, ``TranspilerDecision`` or ``Mark``, or a ``LostEvents`` with which the SDK reports what it
dropped. The sender fills the thread id, the CLOCK_MONOTONIC start and the duration; the receiver fills the
rest: the process id from the kernel (SCM_CREDENTIALS, which the sender cannot forge), the host, the event id,
the wall clock (the same anchor as the kernel events') and the Lamport stamp. Decoded events go to the same
sink as the syscall events.

A datagram that does not decode, names another event kind, carries an impossible time or is longer than
:data:`MAX_DATAGRAM` is counted by reason (``lost``) with its first few messages kept (``errors``), and the
server goes on: the counts become ``LostEvents`` in the trace, the ``LOST`` line of ``sysweave trace`` and
the agent's ``sysweave_agent_events_lost`` metric.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import random
import select
import shutil
import socket
import struct
import tempfile
import threading
import time
from collections.abc import Callable, Iterator

from sysweave.schemas.codec import decode_event
from sysweave.schemas.errors import AgentError, SchemaError
from sysweave.schemas.events import (
    CausalStamp,
    ComputeBlock,
    Event,
    EventHeader,
    LostEvents,
    Mark,
    TranspilerDecision,
    make_event_id,
)

__all__ = ["ENV", "MAX_DATAGRAM", "DatagramStamp", "SdkDatagramError", "SdkServer", "datagram_event"]

ENV = "SYSWEAVE_SDK_SOCKET"
MAX_DATAGRAM = 65536
FUTURE_SLACK_NS = 10 * 1_000_000_000  # a start this far past "now" is not CLOCK_MONOTONIC of this host
MAX_ERRORS_KEPT = 5
QUEUE_LEN = 4096  # datagrams the socket holds while the receiver is busy (see _queue_length)
_QLEN_SYSCTL = "/proc/sys/net/unix/max_dgram_qlen"
_UCRED = struct.Struct("iII")  # struct ucred: pid, uid, gid


class SdkDatagramError(AgentError):
    """A datagram from the SDK that cannot become an event; ``reason`` is the counter it lands in."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclasses.dataclass(slots=True)
class DatagramStamp:
    """Receiver-side header values for one datagram."""

    host_id: str
    pid: int
    event_id: bytes
    seq: int
    wall_offset_ns: int
    now_mono_ns: int


def datagram_event(data: bytes, stamp: DatagramStamp) -> Event:
    """Decode one SDK datagram into its event with the receiver's header (pure).

    Raises :class:`SdkDatagramError` (and nothing else) for anything that is not a valid SDK event."""
    if len(data) > MAX_DATAGRAM:
        raise SdkDatagramError("sdk_oversized", f"datagram of {len(data)} bytes exceeds {MAX_DATAGRAM}")
    try:
        ev = decode_event(data)
    except SchemaError as exc:
        raise SdkDatagramError("sdk_malformed", str(exc)) from None
    except Exception as exc:  # the codec promises DecodeError; the tracer must survive a broken promise
        raise SdkDatagramError("sdk_malformed", f"undecodable datagram ({type(exc).__name__}: {exc})") from None
    h = ev.h
    if not isinstance(ev, (ComputeBlock, TranspilerDecision, Mark, LostEvents)):
        raise SdkDatagramError("sdk_malformed", f"datagram.event: a {type(ev).__name__} is not an SDK event "
                                                "(ComputeBlock, TranspilerDecision, Mark or LostEvents)")
    if h.tid < 0 or h.tid > 0xFFFFFFFF:
        raise SdkDatagramError("sdk_malformed", f"datagram.event.tid: {h.tid} is not a thread id")
    if h.duration_ns < 0 or h.mono_ns <= 0 or h.mono_ns + h.duration_ns > stamp.now_mono_ns + FUTURE_SLACK_NS:
        raise SdkDatagramError("sdk_malformed", f"datagram.event: start {h.mono_ns} ns + duration {h.duration_ns} ns is "
                                                f"not CLOCK_MONOTONIC of this host (now {stamp.now_mono_ns})")
    header = EventHeader(stamp.event_id, stamp.host_id, stamp.pid, h.tid or stamp.pid, h.mono_ns,
                         h.mono_ns + stamp.wall_offset_ns, h.duration_ns, CausalStamp(stamp.seq, 0))
    if isinstance(ev, ComputeBlock):
        if ev.elements < 0:
            raise SdkDatagramError("sdk_malformed", f"datagram.event.elements: {ev.elements} is negative")
        return dataclasses.replace(ev, h=header, source="sdk")
    if isinstance(ev, TranspilerDecision):
        return dataclasses.replace(ev, h=header, source="sdk")
    if isinstance(ev, LostEvents) and ev.count < 0:
        raise SdkDatagramError("sdk_malformed", f"datagram.event.count: {ev.count} is negative")
    return dataclasses.replace(ev, h=header)


@contextlib.contextmanager
def _queue_length(want: int) -> Iterator[int]:
    """Create a datagram socket whose queue holds ``want`` datagrams (yields the length it gets).

    A unix datagram socket takes ``net.unix.max_dgram_qlen`` as its queue length when it is created (Debian's
    kernel default: 10, so a burst of 11 blocks would be dropped). The tracer (root) raises the setting around
    the creation of its own socket and puts it back; without the right to, the socket keeps the default and the
    SDK's drops say so."""
    try:
        with open(_QLEN_SYSCTL) as f:
            old = int(f.read())
    except (OSError, ValueError):
        yield 0
        return
    if old >= want:
        yield old
        return
    try:
        with open(_QLEN_SYSCTL, "w") as f:
            f.write(str(want))
    except OSError:
        yield old
        return
    try:
        yield want
    finally:
        try:
            with open(_QLEN_SYSCTL) as f:
                current = int(f.read())
            if current == want:  # nobody else changed it meanwhile
                with open(_QLEN_SYSCTL, "w") as f:
                    f.write(str(old))
        except (OSError, ValueError):
            pass


def _runtime_dir() -> str | None:
    d = os.environ.get("XDG_RUNTIME_DIR")
    return d if d and os.path.isdir(d) else None


class SdkServer:
    """Bind the socket now; ``start()`` the receiving thread; ``close()`` drains what is queued and removes it.

    ``sink`` receives every decoded event (from the server's thread). ``lost`` counts what could not be
    taken, by reason: ``sdk_malformed``, ``sdk_oversized``, ``sdk_foreign_user`` (a datagram from another
    user: only root could have sent it), ``sdk_no_credentials``, and ``sdk_sender`` (what the SDK itself
    reported dropping: the socket's queue was full, or the tracer was not there yet), ``sdk_sink_error`` (the
    sink raised: the event is lost, the receiver goes on)."""

    def __init__(self, sink: Callable[[Event], None], host_id: str, wall_offset_ns: int,
                 directory: str | None = None) -> None:
        self.sink = sink
        self.host_id = host_id
        self.wall_offset_ns = wall_offset_ns
        self.producer_id = random.getrandbits(64)
        self.received = 0
        self.accepted = 0
        self.lost: dict[str, int] = {}
        self.errors: dict[str, list[str]] = {}  # the first few messages, by reason
        self._seq = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        try:
            self.dir = tempfile.mkdtemp(prefix="sysweave-sdk-", dir=directory or _runtime_dir())  # mode 0700
            self.path = os.path.join(self.dir, "sdk.sock")
            self.queue_len = 0
            with _queue_length(QUEUE_LEN) as qlen:
                self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
                self.queue_len = qlen
            self.sock.bind(self.path)
            os.chmod(self.path, 0o600)
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
            for opt in (getattr(socket, "SO_RCVBUFFORCE", 33), socket.SO_RCVBUF):
                try:
                    self.sock.setsockopt(socket.SOL_SOCKET, opt, 8 << 20)
                    break
                except OSError:
                    continue
            self.sock.setblocking(False)
            # close() writes here to wake the receiver at once (shutdown interrupts waits: no polling timeout)
            self._wake_r, self._wake_w = os.pipe()
        except OSError as exc:
            raise AgentError(f"cannot create the SDK socket: {exc}") from exc

    def env(self) -> dict[str, str]:
        """What the traced command's environment needs."""
        return {ENV: self.path}

    def start(self) -> SdkServer:
        self._thread = threading.Thread(target=self._run, name="sysweave-sdk", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            ready, _, _ = select.select([self.sock.fileno(), self._wake_r], [], [])
            if self._wake_r in ready:
                return
            try:
                while True:  # drain what is queued, then wait again
                    self.receive_one()
            except BlockingIOError:
                continue
            except OSError:
                if self._stop.is_set():
                    return
                time.sleep(0.01)

    def receive_one(self) -> bool:
        """Receive and handle one queued datagram; BlockingIOError when none is queued. Never raises for bad input."""
        data, anc, flags, _addr = self.sock.recvmsg(MAX_DATAGRAM + 1, socket.CMSG_SPACE(_UCRED.size))
        self.received += 1
        creds = next((_UCRED.unpack(d[:_UCRED.size]) for lvl, typ, d in anc
                      if lvl == socket.SOL_SOCKET and typ == socket.SCM_CREDENTIALS and len(d) >= _UCRED.size), None)
        if creds is None:
            self._count("sdk_no_credentials", "a datagram without the sender's credentials")
            return False
        pid, uid, _gid = creds
        if uid not in (os.getuid(), 0):
            self._count("sdk_foreign_user", f"a datagram from uid {uid} (pid {pid})")
            return False
        if flags & socket.MSG_TRUNC or len(data) > MAX_DATAGRAM:
            self._count("sdk_oversized", f"pid {pid}: a datagram over {MAX_DATAGRAM} bytes")
            return False
        self._seq += 1
        stamp = DatagramStamp(self.host_id, pid, make_event_id(self.producer_id, self._seq), self._seq, self.wall_offset_ns,
                       time.clock_gettime_ns(time.CLOCK_MONOTONIC))
        try:
            ev = datagram_event(data, stamp)
        except SdkDatagramError as exc:
            self._count(exc.reason, f"pid {pid}: {exc}")
            return False
        if isinstance(ev, LostEvents):
            self._count("sdk_sender", "", ev.count)
            return True
        try:
            self.sink(ev)
        except Exception as exc:  # a failing sink must not stop the receiver: the event is lost, counted
            self._count("sdk_sink_error", f"pid {pid}: the sink refused a {type(ev).__name__}: {exc!r}")
            return False
        self.accepted += 1
        return True

    def _count(self, reason: str, message: str, n: int = 1) -> None:
        with self._lock:
            self.lost[reason] = self.lost.get(reason, 0) + n
            kept = self.errors.setdefault(reason, [])
            if message and len(kept) < MAX_ERRORS_KEPT:
                kept.append(message)

    def close(self) -> None:
        """Stop, take what is still queued (datagrams sent before the command exited), remove the socket. Idempotent."""
        if self._stop.is_set():
            return
        self._stop.set()
        os.write(self._wake_w, b"x")
        if self._thread is not None:
            self._thread.join(5)
        while True:
            try:
                self.receive_one()
            except OSError:  # BlockingIOError: drained
                break
        self.sock.close()
        os.close(self._wake_r)
        os.close(self._wake_w)
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> SdkServer:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.close()

    def lost_events(self, pid: int, start_mono_ns: int, end_mono_ns: int) -> list[LostEvents]:
        """The counts as events (on ``pid``'s timeline over the window), one per reason, with the first message."""
        out = []
        for i, (reason, n) in enumerate(sorted(self.lost.items())):
            if n:
                h = EventHeader(make_event_id(self.producer_id, (1 << 62) | i), self.host_id, pid, pid, start_mono_ns,
                                start_mono_ns + self.wall_offset_ns, max(end_mono_ns - start_mono_ns, 0))
                out.append(LostEvents(h, reason, n, "; ".join(self.errors.get(reason, []))[:1000]))
        return out
