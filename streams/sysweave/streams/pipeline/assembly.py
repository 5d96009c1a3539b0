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
    """One UnifiedTrace of ``events`` (any order, duplicates allowed): each process's events in (mono_ns,
    event_id) order, its span's bounds, argv, exit and parent, and the derived FORK and EXIT_WAIT edges."""
    trace = UnifiedTrace(trace_id)
    _distribute(trace, _unique_in_order(events if isinstance(events, list) else list(events)))
    edges: dict[bytes, CausalEdge] = {e.h.event_id: e for e in trace.edges}
    for span in _bound_spans(trace.processes):  # in the processes' order, as before
        _apply_process_events(span, trace.processes, edges)
    trace.edges = sorted(edges.values(), key=lambda x: (x.src, x.dst, int(x.kind)))
    return trace


def _unique_in_order(evs: list[Event]) -> list[tuple[int, bytes, Event]]:
    """The first event of each id, decorated by (mono_ns, event_id) and sorted: ids are unique, so the events
    themselves are never compared. Built by C-level maps rather than one Python step per event (reversed: a
    later duplicate is overwritten by an earlier one)."""
    unique = dict(zip(map(_EVENT_ID, reversed(evs)), reversed(evs)))
    vals = unique.values()
    return sorted(zip(map(_MONO, vals), unique, vals))


def _distribute(trace: UnifiedTrace, order: list[tuple[int, bytes, Event]]) -> None:
    """Each event, in ``order``, onto its trace-level list or its process's span (made on its first event)."""
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


def _bound_spans(procs: dict[tuple[str, int], ProcessSpan]) -> list[ProcessSpan]:
    """Set every span's wall-clock bounds (ns; aggregate windows excluded, see ``_WINDOWS``); return the spans
    that hold a ProcessEvent (the only ones :func:`_apply_process_events` has work for)."""
    with_process_events: list[ProcessSpan] = []
    for span in procs.values():
        kinds = set(map(type, span.events))
        timed = span.events if kinds.isdisjoint(_WINDOWS) else (
            [e for e in span.events if not isinstance(e, _WINDOWS)] or span.events)
        span.start_wall_ns = timed[0].h.wall_ns
        span.end_wall_ns = max(map(add, map(_WALL, timed), map(_DURATION, timed)))
        if ProcessEvent in kinds:
            with_process_events.append(span)
    return with_process_events


def _apply_process_events(span: ProcessSpan, procs: dict[tuple[str, int], ProcessSpan],
                          edges: dict[bytes, CausalEdge]) -> None:
    """What ``span``'s process events say: its argv (EXEC) and exit code (EXIT); a forked child's parent,
    inherited argv and FORK edge; a reaped child's exit status and EXIT_WAIT edge (added to ``edges`` by id)."""
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
                _reap(child, e, edges)


def _reap(child: ProcessSpan, wait: ProcessEvent, edges: dict[bytes, CausalEdge]) -> None:
    """The parent's ``wait`` reaped ``child``: its exit status where its own EXIT left none, and the edge from
    its last EXIT to the wait."""
    if child.exit_code is None:
        child.exit_code = wait.exit_code
    if child.signal is None:
        child.signal = wait.signal
    exit_ev = next((x for x in reversed(child.events) if isinstance(x, ProcessEvent)
                    and x.type is ProcessEventType.EXIT), None)
    if exit_ev is not None:
        edge = derived_edge(exit_ev, wait, EdgeKind.EXIT_WAIT)
        edges.setdefault(edge.h.event_id, edge)


def trace_events(trace: UnifiedTrace) -> list[Event]:
    """Every event of a trace (the inverse of assemble, up to derived edges)."""
    out: list[Event] = [e for span in trace.processes.values() for e in span.events]
    out.extend(trace.edges)
    out.extend(trace.hosts)
    out.extend(trace.lost)
    out.extend(trace.clocks)
    return out
