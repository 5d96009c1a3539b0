"""Trace assembly: events (any order, duplicates allowed) -> one UnifiedTrace.

Pure and order-independent: the same multiset of events assembles the same trace whatever the arrival
order, because events are deduplicated by id and every list is sorted by a total key.

Derived edges (happens-before without code changes):
  FORK       the parent's fork/clone event  -> the child's first event
  EXIT_WAIT  the child's exit event          -> the parent's wait4 that reaped it
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from operator import add, attrgetter
from typing import Any

from sysweave.schemas.events import (
    CausalEdge,
    CausalStamp,
    ClockEstimate,
    EdgeKind,
    Event,
    EventHeader,
    FunctionAggregate,
    HostInfo,
    LostEvents,
    ProcessEvent,
    ProcessEventType,
    ProcessSpan,
    SyscallAggregate,
    UnifiedTrace,
)

__all__ = ["assemble", "derived_edge", "trace_events"]

_EVENT_ID = attrgetter("h.event_id")
_MONO = attrgetter("h.mono_ns")
_WALL = attrgetter("h.wall_ns")
_DURATION = attrgetter("h.duration_ns")

_TRACE_LEVEL = (CausalEdge, HostInfo, LostEvents, ClockEstimate)
# an aggregate's header is its window (the agent's --window-s, or the whole run), which can begin before the
# process was forked and end after it exited: it neither bounds the process span nor is its first event
_WINDOWS = (SyscallAggregate, FunctionAggregate)


def _first(span: ProcessSpan) -> Event:
    return next((e for e in span.events if not isinstance(e, _WINDOWS)), span.events[0])




def derived_edge(src: Event, dst: Event, kind: EdgeKind, detail: str = "") -> CausalEdge:
    """An edge with an id derived from its endpoints, so re-deriving it never duplicates it."""
    eid = hashlib.blake2b(src.h.event_id + dst.h.event_id + bytes([kind]), digest_size=16).digest()
    h = EventHeader(eid, dst.h.host_id, dst.h.pid, dst.h.tid, dst.h.mono_ns, dst.h.wall_ns, 0, CausalStamp())
    return CausalEdge(h, src.h.event_id, dst.h.event_id, kind, detail)


def assemble(events: Iterable[Event], trace_id: bytes) -> UnifiedTrace:
    evs = events if isinstance(events, list) else list(events)
    # the first of each id (reversed: a later duplicate is overwritten by an earlier one), and the events
    # decorated by (mono_ns, event_id) — ids are unique, so the events themselves are never compared; both
    # built by C-level maps rather than one Python step per event
    unique = dict(zip(map(_EVENT_ID, reversed(evs)), reversed(evs)))
    vals = unique.values()
    order = sorted(zip(map(_MONO, vals), unique, vals))
    trace = UnifiedTrace(trace_id)
    procs = trace.processes
    lists: dict[type, list[Any]] = dict(zip(_TRACE_LEVEL, (trace.edges, trace.hosts, trace.lost, trace.clocks)))
    host, pid, append = None, None, None
    for _, _, e in order:
        side = lists.get(type(e))
        if side is not None:
            side.append(e)
            continue
        h = e.h
        if h.pid != pid or h.host_id != host or append is None:  # runs of one process's events: one lookup each
            host, pid = h.host_id, h.pid
            span = procs.get((host, pid))
            if span is None:
                span = procs[(host, pid)] = ProcessSpan(host, pid)
            append = span.events.append
        append(e)
    with_process_events: list[ProcessSpan] = []
    for span in procs.values():
        kinds = set(map(type, span.events))
        timed = span.events if kinds.isdisjoint(_WINDOWS) else (
            [e for e in span.events if not isinstance(e, _WINDOWS)] or span.events)
        span.start_wall_ns = timed[0].h.wall_ns
        span.end_wall_ns = max(map(add, map(_WALL, timed), map(_DURATION, timed)))
        if ProcessEvent in kinds:
            with_process_events.append(span)
    edges: dict[bytes, CausalEdge] = {e.h.event_id: e for e in trace.edges}
    for span in with_process_events:  # in the processes' order, as before
        host = span.host_id
        for e in span.events:
            if type(e) is not ProcessEvent:
                continue
            if e.type is ProcessEventType.EXEC:
                span.argv = e.argv
            elif e.type is ProcessEventType.EXIT:
                if e.exit_code is not None:
                    span.exit_code = e.exit_code
            elif e.type is ProcessEventType.FORK:
                child = procs.get((host, e.child_pid))
                if child is not None:
                    child.parent = (host, span.pid)
                    if not child.argv:
                        child.argv = span.argv  # a fork without exec runs the parent's program
                    edge = derived_edge(e, _first(child), EdgeKind.FORK)
                    edges.setdefault(edge.h.event_id, edge)
            elif e.type is ProcessEventType.WAIT:
                child = procs.get((host, e.child_pid))
                if child is not None:
                    if child.exit_code is None:
                        child.exit_code = e.exit_code
                    if child.signal is None:
                        child.signal = e.signal
                    exit_ev = next((x for x in reversed(child.events) if isinstance(x, ProcessEvent)
                                    and x.type is ProcessEventType.EXIT), None)
                    if exit_ev is not None:
                        edge = derived_edge(exit_ev, e, EdgeKind.EXIT_WAIT)
                        edges.setdefault(edge.h.event_id, edge)
    trace.edges = sorted(edges.values(), key=lambda x: (x.src, x.dst, int(x.kind)))
    return trace


def trace_events(trace: UnifiedTrace) -> list[Event]:
    """Every event of a trace (the inverse of assemble, up to derived edges)."""
    out: list[Event] = [e for span in trace.processes.values() for e in span.events]
    out.extend(trace.edges)
    out.extend(trace.hosts)
    out.extend(trace.lost)
    out.extend(trace.clocks)
    return out
