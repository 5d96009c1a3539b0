"""Causal clocks: Lamport, vector and hybrid logical clocks.

What each one guarantees (and what it does not):

* **Lamport** (1978): if a happened before b then C(a) < C(b). The converse is FALSE: C(a) < C(b) also
  holds for concurrent events (two processes that never communicate, one with more local events). Use
  Lamport values to order consistently, never to conclude causality.
* **Vector**: a happened before b  <=>  V(a) < V(b) (pointwise <=, one strictly less). Exact, but the size
  grows with the number of processes, so sysweave computes them at assembly time, not on the wire.
* **Hybrid logical clock** (Kulkarni et al., 2014): a Lamport-style clock whose value stays within the
  maximum clock skew of physical time, packed in 64 bits so it sorts like a timestamp.

Errors::

    ValueError
      └── ClockSkewError   -- a received HLC is further ahead of local physical time than allowed
"""

from __future__ import annotations

import enum
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Final

from sysweave.schemas.errors import SchemaError

__all__ = [
    "HLC_LOGICAL_BITS",
    "HLC_LOGICAL_MAX",
    "HLC_TICKS_PER_S",
    "ClockSkewError",
    "HybridLogicalClock",
    "LamportClock",
    "Order",
    "VectorClock",
    "hlc_pack",
    "hlc_to_wall_ns",
    "hlc_unpack",
    "ns_to_hlc_ticks",
]


class LamportClock:
    """Thread-safe Lamport counter. ``tick()`` for a local or send event, ``merge(remote)`` on receive."""

    __slots__ = ("_lock", "_value")

    def __init__(self, start: int = 0) -> None:
        if start < 0:
            raise ValueError("a Lamport clock starts at 0 or later")
        self._value = start
        self._lock = threading.Lock()

    @property
    def value(self) -> int:
        return self._value

    def tick(self) -> int:
        """Advance for a local event; return the new value."""
        with self._lock:
            self._value += 1
            return self._value

    def merge(self, remote: int) -> int:
        """Receive an event stamped ``remote``: value = max(local, remote) + 1; return it."""
        with self._lock:
            self._value = max(self._value, remote) + 1
            return self._value


class Order(enum.Enum):
    BEFORE = "before"
    AFTER = "after"
    CONCURRENT = "concurrent"
    EQUAL = "equal"


class VectorClock:
    """Immutable vector clock over node names (process or host ids). Missing entries are 0.

    >>> a = VectorClock().increment("p1")          # {p1: 1}
    >>> b = a.merge(VectorClock()).increment("p2")  # p2 received from p1: {p1: 1, p2: 1}
    >>> a.compare(b), VectorClock({"p3": 1}).compare(a)
    (<Order.BEFORE: 'before'>, <Order.CONCURRENT: 'concurrent'>)
    """

    __slots__ = ("_v",)

    def __init__(self, entries: Mapping[str, int] | Iterable[tuple[str, int]] = ()) -> None:
        items = entries.items() if isinstance(entries, Mapping) else entries
        v: dict[str, int] = {}
        for node, count in items:
            if count < 0:
                raise ValueError(f"vector clock entry {node}={count} is negative")
            if count:
                v[node] = count
        self._v = v

    def __getitem__(self, node: str) -> int:
        return self._v.get(node, 0)

    def entries(self) -> dict[str, int]:
        return dict(self._v)

    def increment(self, node: str) -> VectorClock:
        out = VectorClock()
        out._v = dict(self._v)
        out._v[node] = out._v.get(node, 0) + 1
        return out

    def merge(self, other: VectorClock) -> VectorClock:
        """Pointwise maximum (the receive rule, before the receiver increments its own entry)."""
        out = VectorClock()
        out._v = dict(self._v)
        for node, count in other._v.items():
            if count > out._v.get(node, 0):
                out._v[node] = count
        return out

    def compare(self, other: VectorClock) -> Order:
        less = greater = False
        for node in self._v.keys() | other._v.keys():
            a, b = self[node], other[node]
            less |= a < b
            greater |= a > b
        if less and greater:
            return Order.CONCURRENT
        if less:
            return Order.BEFORE
        return Order.AFTER if greater else Order.EQUAL

    def happened_before(self, other: VectorClock) -> bool:
        return self.compare(other) is Order.BEFORE

    def __eq__(self, other: object) -> bool:
        return isinstance(other, VectorClock) and self._v == other._v

    def __hash__(self) -> int:
        return hash(frozenset(self._v.items()))

    def __repr__(self) -> str:
        return f"VectorClock({dict(sorted(self._v.items()))})"


class ClockSkewError(SchemaError):
    """A remote HLC is ahead of local physical time by more than the configured maximum offset."""


HLC_LOGICAL_BITS: Final = 16
HLC_LOGICAL_MAX: Final = (1 << HLC_LOGICAL_BITS) - 1
HLC_TICKS_PER_S: Final = 1 << 16  # l counts 2**-16 s (~15.26 us), like NTP's short fraction


def ns_to_hlc_ticks(ns: int) -> int:
    """Unix ns -> 48-bit HLC physical ticks (2**-16 s). Example: 1 s = 1_000_000_000 ns -> 65536 ticks."""
    return ns * HLC_TICKS_PER_S // 1_000_000_000


def hlc_pack(l_ticks: int, c: int) -> int:
    """(l, c) -> 64-bit value: l in the high 48 bits, c in the low 16. Packed values sort as (l, c)."""
    return (l_ticks << HLC_LOGICAL_BITS) | c


def hlc_unpack(value: int) -> tuple[int, int]:
    return value >> HLC_LOGICAL_BITS, value & HLC_LOGICAL_MAX


def hlc_to_wall_ns(value: int) -> int:
    """The physical part of a packed HLC as Unix ns (rounded down to the 15.26 us tick)."""
    return (value >> HLC_LOGICAL_BITS) * 1_000_000_000 // HLC_TICKS_PER_S


class HybridLogicalClock:
    """Kulkarni et al.'s HLC. ``now()`` for local/send events, ``update(remote)`` on receive.

    Guarantees: values strictly increase per clock; e happened-before f => hlc(e) < hlc(f); and the
    physical part l never exceeds the largest physical time seen (local or received), so
    l - pt <= the maximum skew between the clocks involved.

    Worked example (ticks of 2**-16 s): local pt=100, state (l=100, c=2); receive (l=103, c=5) with
    pt still 100 -> l = max(100, 103, 100) = 103 = l_m, so c = c_m + 1 = 6: packed (103 << 16) | 6.

    When c would overflow 16 bits the physical part is advanced by one tick (15 us) instead, which keeps
    monotonicity and adds at most that much to the drift bound.
    """

    __slots__ = ("_c", "_clock", "_l", "_lock", "_max_offset_ticks")

    def __init__(self, physical_ns: Callable[[], int] = time.time_ns, max_offset_ns: int | None = None) -> None:
        self._clock = physical_ns
        self._l = 0
        self._c = 0
        self._lock = threading.Lock()
        self._max_offset_ticks = None if max_offset_ns is None else ns_to_hlc_ticks(max_offset_ns)

    @property
    def value(self) -> int:
        return hlc_pack(self._l, self._c)

    def _bump(self) -> None:
        if self._c == HLC_LOGICAL_MAX:
            self._l += 1
            self._c = 0
        else:
            self._c += 1

    def now(self) -> int:
        with self._lock:
            pt = ns_to_hlc_ticks(self._clock())
            if pt > self._l:
                self._l, self._c = pt, 0
            else:
                self._bump()
            return hlc_pack(self._l, self._c)

    def update(self, remote: int) -> int:
        lm, cm = hlc_unpack(remote)
        with self._lock:
            pt = ns_to_hlc_ticks(self._clock())
            if self._max_offset_ticks is not None and lm - pt > self._max_offset_ticks:
                raise ClockSkewError(
                    f"remote HLC is {(lm - pt) * 1e6 / HLC_TICKS_PER_S:.0f} us ahead of local time "
                    f"(allowed {self._max_offset_ticks * 1e6 / HLC_TICKS_PER_S:.0f} us): check NTP on both hosts")
            lo = self._l
            self._l = max(lo, lm, pt)
            if self._l == lo == lm:
                self._c = max(self._c, cm)
                self._bump()
            elif self._l == lo:
                self._bump()
            elif self._l == lm:
                self._c = cm
                self._bump()
            else:
                self._c = 0
            return hlc_pack(self._l, self._c)
