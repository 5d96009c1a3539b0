"""sysweave.sdk: compute blocks, transpiler decisions and marks from inside a program (standard library only).

    from sysweave import sdk

    with sdk.compute_block("matmul 512", op="gemm", elements=512 * 512):
        c = a @ b

    @sdk.compute_block("tokenize", op="simd")       # or bare: @sdk.compute_block
    def tokenize(line): ...

    sdk.transpiler_decision("D17", kind="loop-vectorised", chosen="simd x8", source_location="wc.py:12",
                            target_symbol="count_words", alternatives=("scalar",), reason="no loop-carried dependency")
    sdk.mark("epoch", n=3)

Under ``sysweave trace`` (or ``sysweave agent -- CMD``) the variable ``SYSWEAVE_SDK_SOCKET`` names a unix
datagram socket; each block, decision and mark is one datagram there, stamped with CLOCK_MONOTONIC (the clock
of the kernel's events) and the calling thread's id; the tracer takes the process id from the kernel
(SCM_CREDENTIALS). Without the variable every call is a no-op: ``with compute_block(...)`` costs about 0.1 µs
and a decorated function is the undecorated function.

Sending never blocks and never raises: a datagram the tracer cannot take now (its queue is full, the datagram
is over 64 KiB, the tracer is gone) is dropped and counted, and the count is sent as a LostEvents datagram as
soon as one gets through (and at exit), so the trace reports the loss. ``stats()`` shows the counters.

The datagram format (the schema codec's ``[version, event]`` in msgpack, written here by hand) is documented
byte by byte in docs/sdk.md, for programs in other languages.
"""

from __future__ import annotations

import atexit
import functools
import os
import socket
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

# the datagram encoder (private to the SDK), under the names this module has always used
from sysweave.sdk._msgpack import COMPUTE_PREFIX as _COMPUTE_PREFIX
from sysweave.sdk._msgpack import ELEMENTS as _ELEMENTS
from sysweave.sdk._msgpack import KIND_COMPUTE as KIND_COMPUTE
from sysweave.sdk._msgpack import KIND_LOST as KIND_LOST
from sysweave.sdk._msgpack import KIND_MARK as KIND_MARK
from sysweave.sdk._msgpack import KIND_TRANSPILER as KIND_TRANSPILER
from sysweave.sdk._msgpack import MAX_ATTRS as MAX_ATTRS
from sysweave.sdk._msgpack import PREFIX as _PREFIX
from sysweave.sdk._msgpack import SCHEMA_VERSION as SCHEMA_VERSION
from sysweave.sdk._msgpack import TIMES as _TIMES
from sysweave.sdk._msgpack import encode_int as _int
from sysweave.sdk._msgpack import encode_map as _map
from sysweave.sdk._msgpack import encode_str as _str
from sysweave.sdk._msgpack import encode_strs as _strs

__all__ = ["ENV", "MAX_DATAGRAM", "compute_block", "connect", "enabled", "mark", "stats", "transpiler_decision"]

ENV = "SYSWEAVE_SDK_SOCKET"
MAX_DATAGRAM = 65536  # the receiver counts anything longer as oversized
F = TypeVar("F", bound="Callable[..., Any]")  # a string: collections.abc.Callable[...] needs 3.9 at run time


_PARTS: dict[tuple[str, str, str, str], tuple[bytes, bytes]] = {}
_TIMES_PACK = _TIMES.pack
_clock = time.monotonic_ns  # CLOCK_MONOTONIC on Linux: the kernel events' clock
_local = threading.local()


def _tid() -> int:
    """The calling thread's kernel id, cached per thread (``get_native_id`` is a gettid system call)."""
    try:
        return _local.tid  # type: ignore[no-any-return]
    except AttributeError:
        _local.tid = tid = threading.get_native_id()
        return tid


def _after_fork_in_child() -> None:
    """A forked child has new thread ids, its own counters (the parent reports its own drops) and a fresh lock
    (another thread of the parent may have held it at the fork)."""
    global _local
    _local = threading.local()
    t = _transport
    if t is not None:
        t._lock = threading.Lock()
        t.sent, t.dropped, t.unreported = 0, {}, 0


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


# --- transport ------------------------------------------------------------------------------------------------

class _Transport:
    """One connected, non-blocking datagram socket per process (children inherit it; the kernel stamps each
    datagram with the sender's pid). Failures are counted, never raised."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.sent = 0
        self.dropped: dict[str, int] = {}
        self.unreported = 0
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None
        self._retry_at = 0
        self._report_at = 0  # drop reports at most every 100 ms (a burst of drops costs one report, not one per send)
        self._connect()

    def _connect(self) -> bool:
        self._retry_at = time.monotonic_ns() + 1_000_000_000  # at most one reconnect attempt a second
        try:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            s.setblocking(False)
            s.connect(self.path)
        except OSError:
            return False
        self._sock = s
        return True

    def send(self, data: bytes) -> None:
        sock = self._sock
        if len(data) > MAX_DATAGRAM:
            self._drop("oversized")
            return
        try:
            if sock is None:
                raise ConnectionRefusedError
            sock.send(data)
        except BlockingIOError:
            self._drop("receiver_full")
            return
        except OSError:
            self._drop("unreachable")
            if sock is not None:
                self._sock = None
                sock.close()
            if time.monotonic_ns() >= self._retry_at:
                self._connect()  # the tracer may have restarted (the agent)
            return
        self.sent += 1
        if self.unreported and time.monotonic_ns() >= self._report_at:
            self._report()

    def _drop(self, why: str) -> None:
        with self._lock:
            self.dropped[why] = self.dropped.get(why, 0) + 1
            self.unreported += 1

    def _report(self, wait_s: float = 0.0) -> None:
        """Tell the tracer what was dropped since the last report (a LostEvents datagram); the last report
        (``close``, at exit) waits up to ``wait_s`` for room in the socket's queue."""
        self._report_at = time.monotonic_ns() + 100_000_000
        with self._lock:
            n, self.unreported = self.unreported, 0
            detail = ", ".join(f"{k}={v}" for k, v in sorted(self.dropped.items()))
        now = time.monotonic_ns()
        data = (_PREFIX[KIND_LOST] + _TIMES.pack(0xCE, _tid(), 0xCF, now, 0, 0xCF, 0, 0, 0)
                + _str("sdk_sender") + _int(n) + _str(f"dropped by the SDK before sending (totals: {detail})"))
        sock = self._sock
        try:
            if sock is None:
                raise ConnectionRefusedError
            if wait_s:
                sock.settimeout(wait_s)
            sock.send(data)
        except OSError:
            with self._lock:
                self.unreported += n

    def close(self) -> None:
        if self.unreported and self._sock is not None:
            self._report(wait_s=0.5)
        if self._sock is not None:
            self._sock.close()
            self._sock = None


_transport: _Transport | None = None


def connect(path: str | None = None) -> bool:
    """(Re)connect to ``path`` (default: $SYSWEAVE_SDK_SOCKET); False (and every call a no-op) without one.

    Called at import; call it again only if the variable is set later in the program's life."""
    global _transport
    path = path if path is not None else os.environ.get(ENV, "")
    if _transport is not None:
        _transport.close()  # report what it dropped, let go of its socket
    _transport = _Transport(path) if path else None
    return _transport is not None


def enabled() -> bool:
    """True when a tracer is listening (the calls send datagrams)."""
    return _transport is not None


def stats() -> dict[str, Any]:
    """{"enabled", "sent", "dropped": {why: n}, "unreported"}: this process's SDK counters."""
    t = _transport
    if t is None:
        return {"enabled": False, "sent": 0, "dropped": {}, "unreported": 0}
    return {"enabled": True, "sent": t.sent, "dropped": dict(t.dropped), "unreported": t.unreported}


def _flush_at_exit() -> None:
    if _transport is not None:
        _transport.close()


atexit.register(_flush_at_exit)


# --- the API ----------------------------------------------------------------------------------------------------

class _Noop:
    """What compute_block returns when nothing listens: C-level enter/exit (``str.format`` of "" ignores its
    arguments and returns "", falsy, so an exception passes through), decorating returns the function itself."""

    __slots__ = ()
    __enter__ = "".format
    __exit__ = "".format

    def __call__(self, fn: F) -> F:
        return fn


_NOOP = _Noop()


class _Block:
    """One traced compute block: a context manager for one ``with`` at a time, or a decorator (any threads)."""

    __slots__ = ("_attrs", "_t0", "decision", "elements", "name", "op", "symbol")

    def __init__(self, name: str, op: str, elements: int, symbol: str, decision: str,
                 attrs: dict[str, Any] | None) -> None:
        self.name, self.op, self.elements, self.symbol, self.decision = name, op, elements, symbol, decision
        self._attrs = attrs
        self._t0 = 0

    def _parts(self) -> tuple[bytes, bytes]:
        """The fields before ``elements`` and after it (cached per block kind when there are no attributes)."""
        if self._attrs:
            return _str(self.name) + _str(self.op), _str(self.symbol) + b"\xa3sdk" + _str(self.decision) + _map(self._attrs)
        key = (self.name, self.op, self.symbol, self.decision)
        parts = _PARTS.get(key)
        if parts is None:
            parts = (_str(self.name) + _str(self.op), _str(self.symbol) + b"\xa3sdk" + _str(self.decision) + b"\x80")
            if len(_PARTS) < 4096:
                _PARTS[key] = parts
        return parts

    def _fields(self, elements: int) -> bytes:
        pre, post = self._parts()
        return pre + _ELEMENTS(0xCF, elements if 0 <= elements < 2**64 else 0) + post

    def __enter__(self) -> None:
        self._t0 = _clock()

    def __exit__(self, *_exc: object) -> None:
        t1 = _clock()
        t = _transport
        if t is not None:
            t0 = self._t0
            pre, post = self._parts()
            e = self.elements
            t.send(b"".join((_COMPUTE_PREFIX, _TIMES_PACK(0xCE, _tid(), 0xCF, t0, 0, 0xCF, t1 - t0, 0, 0), pre,
                             _ELEMENTS(0xCF, e if 0 <= e < 2**64 else 0), post)))

    def __call__(self, fn: F) -> F:
        if not self.symbol:
            self.symbol = getattr(fn, "__qualname__", "") or getattr(fn, "__name__", "")
        fields = self._fields(self.elements)
        prefix = _PREFIX[KIND_COMPUTE]
        pack = _TIMES.pack
        clock = time.monotonic_ns
        tid = _tid

        @functools.wraps(fn)
        def traced(*args: Any, **kwargs: Any) -> Any:
            t0 = clock()
            try:
                return fn(*args, **kwargs)
            finally:
                t1 = clock()
                t = _transport
                if t is not None:
                    t.send(prefix + pack(0xCE, tid(), 0xCF, t0, 0, 0xCF, t1 - t0, 0, 0) + fields)

        return traced  # type: ignore[return-value]


def compute_block(name: Any, op: str = "", elements: int = 0, symbol: str = "", decision: str = "",
                  attrs: dict[str, Any] | None = None) -> Any:
    """A compute region, as ``with compute_block(...):`` or ``@compute_block(...)`` (or bare ``@compute_block``).

    ``op``: the kind of work ("gemm", "simd", ...); ``elements``: items processed (0: unknown); ``symbol``: the
    function it measures (decorator default: the function's ``__qualname__``), which links it to transpiler
    decisions naming that symbol; ``decision``: the id of the decision that produced it, when known."""
    if _transport is None:
        if name.__class__ is str:
            return _NOOP
        return name if callable(name) else _NOOP  # bare @compute_block
    if name.__class__ is not str and callable(name):
        return _Block(getattr(name, "__qualname__", "block"), op, elements, symbol, decision, attrs)(name)
    return _Block(str(name), op, elements, symbol, decision, attrs)


def transpiler_decision(decision_id: str, kind: str = "", chosen: str = "", *, source_location: str = "",
                        target_symbol: str = "", alternatives: tuple[str, ...] = (), reason: str = "",
                        attrs: dict[str, Any] | None = None) -> None:
    """Record a decision taken at run time (a JIT, an autotuner): what ``kind`` of decision, what was ``chosen``
    over the ``alternatives`` and why; ``target_symbol`` links it to the compute blocks of that function."""
    t = _transport
    if t is None:
        return
    now = time.monotonic_ns()
    t.send(_PREFIX[KIND_TRANSPILER] + _TIMES.pack(0xCE, _tid(), 0xCF, now, 0, 0xCF, 0, 0, 0)
           + _str(str(decision_id)) + _str(source_location) + _str(target_symbol) + _str(kind) + _str(chosen)
           + _strs(alternatives) + _str(reason) + b"\xa3sdk" + _map(attrs))


def mark(name: str, **attrs: Any) -> None:
    """An instant on the calling thread's timeline: ``mark("epoch", n=3)``."""
    t = _transport
    if t is None:
        return
    now = time.monotonic_ns()
    t.send(_PREFIX[KIND_MARK] + _TIMES.pack(0xCE, _tid(), 0xCF, now, 0, 0xCF, 0, 0, 0)
           + _str(str(name)) + _map(attrs))


connect()
