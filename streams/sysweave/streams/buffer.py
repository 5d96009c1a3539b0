"""Open traces waiting to close (pure state, no I/O): what a stream worker holds between batches.

A trace (one partition key) closes when every process seen has exited and ``grace_s`` has passed since
the last event, or after ``inactivity_s`` without events. Events for a closed trace reopen it as an
update with the same trace id (derived from the key), counted as late. Duplicates (redelivery, spool
replay) are dropped by event id.

Memory is bounded by configuration, never by the input: ``max_events`` caps the events held across open and
closed traces. Over it, closed traces are forgotten first (oldest first: a late event then starts an update
with only the late events, merged by event id downstream), then the least recently active open traces are
closed early (``forced_closes``; emitted like any closed trace, marked ``forced``). Example: max_events=1000
with 900 events in closed traces and 300 in one open trace forgets closed traces until 1000 or fewer remain.

Cross-host join (``join``): a closed trace may be *held* (:meth:`TraceBuffer.hold`) while the other half of
one of its connections is still expected; events forwarded from another tree are added as *settled* — their
processes do not keep the trace open (a long-lived server lends only a window of its life).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field

from sysweave.schemas import topics
from sysweave.schemas.events import Event, ProcessEvent, ProcessEventType
from sysweave.streams.pipeline import FinishedTrace, build_trace

__all__ = ["OpenTrace", "TraceBuffer", "finish", "trace_id_for"]


def trace_id_for(key: bytes) -> bytes:
    """Stable 16-byte trace id of a partition key (the same across workers and restarts): the W3C trace id of a
    ``TRACEPARENT`` key (``topics.trace_id_of_key``), else a hash of the key."""
    return topics.trace_id_of_key(key) or hashlib.blake2b(key, digest_size=16).digest()


@dataclass
class OpenTrace:
    key: bytes
    events: dict[bytes, Event] = field(default_factory=dict)
    last_seen_s: float = 0.0
    alive: set[tuple[str, int]] = field(default_factory=set)
    exited: set[tuple[str, int]] = field(default_factory=set)
    late: int = 0
    emitted_once: bool = False
    held_since_s: float | None = None  # first closed, then held for the join
    lent: bool = False  # some of its connection windows were forwarded to other traces while it was open
    accepts: int = 0  # connections it accepted (a server of several lends windows while open)
    forced: bool = False  # closed early because the buffer reached its event limit (not held for the join)
    partition: int = -1  # the input partition its messages come from (-1: not known)

    def held_for(self, now_s: float) -> float:
        """Seconds it has been held for the join since it first closed (0 when not held)."""
        return now_s - self.held_since_s if self.held_since_s is not None else 0.0


@dataclass
class TraceBuffer:
    grace_s: float = 2.0
    inactivity_s: float = 30.0
    open: dict[bytes, OpenTrace] = field(default_factory=dict)
    closed: dict[bytes, OpenTrace] = field(default_factory=dict)  # kept to merge late events into updates
    max_events: int = 2_000_000  # events held in open + closed traces (about 700 bytes each in a worker)
    duplicates: int = 0
    late_events: int = 0
    forced_closes: int = 0  # open traces closed early at the event limit
    forgotten_closed: int = 0  # closed traces dropped from memory (before ``keep`` or at the event limit)

    def add(self, key: bytes, events: Iterable[Event], now_s: float, settled: bool = False, partition: int = -1
            ) -> None:
        t = self.open.get(key)
        if t is None:
            t = self.closed.pop(key, None) or OpenTrace(key)
            self.open[key] = t
        if partition >= 0:
            t.partition = partition
            if t.emitted_once:
                incoming = list(events)
                t.late += len(incoming)
                self.late_events += len(incoming)
                events = incoming
        held, alive, last_pid, last_host = t.events, t.alive, 0, ""
        for e in events:
            h = e.h
            if h.event_id in held:
                self.duplicates += 1
                continue
            held[h.event_id] = e
            if h.pid and not settled and (h.pid != last_pid or h.host_id != last_host):  # a batch is mostly one
                last_pid, last_host = h.pid, h.host_id  # process: one set insertion per run of its events
                alive.add((last_host, last_pid))
            if type(e) is not ProcessEvent:
                continue
            if e.type is ProcessEventType.EXIT:
                t.exited.add((h.host_id, h.pid))
            elif e.type is ProcessEventType.WAIT and e.child_pid:
                t.exited.add((h.host_id, e.child_pid))  # reaped: its exit may have gone to another trace
                # (a child that named its own trace at exec)
        t.last_seen_s = now_s

    def ready(self, now_s: float) -> list[OpenTrace]:
        """Traces to emit now (removed from ``open``; kept in ``closed`` for late events)."""
        out = []
        for key, t in list(self.open.items()):
            idle = now_s - t.last_seen_s
            all_exited = bool(t.exited) and t.alive <= t.exited
            if (all_exited and idle >= self.grace_s) or idle >= self.inactivity_s:
                out.append(t)
                del self.open[key]
                t.emitted_once = True
                self.closed[key] = t
        # at the event limit: forget closed traces, then close the least recently active open ones early
        held = self.held_events()
        for key in list(self.closed):
            if held <= self.max_events:
                break
            held -= len(self.closed.pop(key).events)  # (one closed just now is still emitted: it is in ``out``)
            self.forgotten_closed += 1
        for t in sorted(self.open.values(), key=lambda x: x.last_seen_s):
            if held <= self.max_events:
                break
            del self.open[t.key]
            t.emitted_once = t.forced = True
            self.closed[t.key] = t
            self.forced_closes += 1
            held -= len(t.events)  # emitted now and forgotten by the next forget_closed
            out.append(t)
        return out

    def held_events(self) -> int:
        """Events held in memory now, open and closed traces together."""
        return sum(len(t.events) for t in self.open.values()) + sum(len(t.events) for t in self.closed.values())

    def hold(self, t: OpenTrace, now_s: float) -> float:
        """Put a trace ``ready`` just returned back among the open ones (not emitted); returns how long it has
        been held since it first closed."""
        self.closed.pop(t.key, None)
        t.emitted_once = False
        if t.held_since_s is None:
            t.held_since_s = now_s
        self.open[t.key] = t
        return now_s - t.held_since_s

    def release(self, t: OpenTrace) -> None:
        """A trace ``ready`` returned is being emitted, not held (again) for the join."""
        t.held_since_s = None

    def note_accepts(self, key: bytes, n: int) -> None:
        """``n`` more connections accepted by the open trace ``key`` (a server of several lends windows)."""
        t = self.open.get(key)
        if t is not None:
            t.accepts += n

    def lending_servers(self) -> list[OpenTrace]:
        """Open traces that accepted two connections or more and are not held: their complete windows may go
        to their clients' traces while they run (``join.ripe_windows``)."""
        return [t for t in self.open.values() if t.accepts >= 2 and t.held_since_s is None]

    def lend(self, t: OpenTrace, event_ids: Iterable[bytes]) -> None:
        """Events of an open trace forwarded to another trace (a complete connection window): no longer its own."""
        for i in event_ids:
            t.events.pop(i, None)
        t.lent = True

    def drop_partitions(self, partitions: set[int]) -> int:
        """Forget every trace whose messages come from ``partitions`` (they moved to another worker, which reads
        them again from the last committed offset); returns how many open traces were dropped."""
        dropped = [k for k, t in self.open.items() if t.partition in partitions]
        for k in dropped:
            del self.open[k]
        for k in [k for k, t in self.closed.items() if t.partition in partitions]:
            del self.closed[k]
        return len(dropped)

    def forget_closed(self, keep: int = 10_000) -> None:
        """Bound the memory of closed traces (oldest first): at most ``keep`` of them, and none beyond the event
        limit (forced closes included)."""
        held = self.held_events()
        while self.closed and (len(self.closed) > keep or held > self.max_events):
            held -= len(self.closed.pop(next(iter(self.closed))).events)
            self.forgotten_closed += 1


def finish(t: OpenTrace, events: Iterable[Event] | None = None, extra: Iterable[Event] = (), *,
           defer_stamps: bool = False) -> FinishedTrace:
    """The closed trace through THE pipeline (``pipeline.build_trace``), labelled with its key when the key
    is a trace label (``topics.label_of_key``), counting the events that arrived after it first closed.
    ``events``: the part of it that stays under its key (default: all; the join may forward the rest);
    ``extra``: events to add (the HostInfo of hosts whose own arrived elsewhere)."""
    evs = [*(t.events.values() if events is None else events), *extra]
    hosts = {e.h.host_id for e in evs}
    return build_trace(evs, trace_id_for(t.key), topics.label_of_key(t.key, hosts), late_events=t.late,
                       defer_stamps=defer_stamps)  # the worker encodes at once: pipeline.wire.encode_finished
