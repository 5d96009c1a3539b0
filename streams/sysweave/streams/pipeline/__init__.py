"""The one trace pipeline (pure: no faust, no kafka): events in, one finished UnifiedTrace out.

Every mode calls :func:`build_trace` — ``sysweave trace`` (store_trace) and ``sysweave validate``
(data_flow, store_report) in-process, the Faust stream worker (``buffer.finish``), the validator service
(``handle_trace``) — so a trace is built the same way wherever it is built.

Assembly (events in any order, duplicates dropped -> one UnifiedTrace with fork and exit->wait edges), then
an ordered list of steps with one small interface, as Jaeger's trace adjusters: a :class:`Step` takes the
trace, may change it in place, and returns it; what it could not do it appends to ``warnings`` (reported,
never hidden, never fatal). The default :data:`STEPS`:

1. ``CausalEdges``  pipe and TCP edges from the one fd tracker (``fdtrack``, ``streamedges``);
2. ``ClockSync``    cross-host offsets from the TCP send/receive pairs, and every wall time of a corrected
                    host shifted by its offset — the ONLY place times are corrected; a ClockEstimate is
                    recorded per corrected host, and hosts that already carry one are left alone;
3. ``CausalStamps`` Lamport restamping — values consistent with program order and every edge, raised only
                    where needed — and hybrid logical clocks from the corrected wall clock along program
                    order and edges (``hlc``), in one pass over the causal order (one rewrite per event
                    whose stamp changes; ``build_trace(..., defer_stamps=True)`` leaves them in
                    ``FinishedTrace.pending`` for ``wire.encode_finished``, the stream worker's emission);
                    edges carry their destination's stamps.

Units: ``wall_ns`` is Unix time in ns, after ClockSync on the reference host's clock (the root process's
host); ``mono_ns`` stays each host's own CLOCK_MONOTONIC ns and is never shifted (it orders events within a
host); HLC values are packed 48.16 (l in 2**-16 s ticks of corrected wall time, c a counter).

Idempotent: building a finished trace's own events again (``assembly.trace_events``) gives the same trace —
edges have derived ids, Lamport restamping only raises stamps that violate an edge, clock sync skips hosts
already corrected, HLC is a function of corrected times and edges. So the validator service, which receives
the worker's finished trace, calls the same function with ``steps=FINISHED`` (assembly only): the result is
the trace the worker built, times corrected once.

Worked example::

    >>> from sysweave.schemas.events import EventHeader, ProcessEvent, ProcessEventType
    >>> h = lambda pid, t, n: EventHeader(bytes([n]) * 16, "h", pid, pid, t, 1_000_000_000 + t)
    >>> evs = [ProcessEvent(h(1, 10, 1), ProcessEventType.FORK, 1, 2),
    ...        ProcessEvent(h(2, 20, 2), ProcessEventType.EXIT, exit_code=0),
    ...        ProcessEvent(h(1, 30, 3), ProcessEventType.WAIT, 1, 2, exit_code=0)]
    >>> done = build_trace(evs, b"t" * 16, label="demo")
    >>> [e.kind.name for e in done.trace.edges], done.trace.label, done.warnings
    (['FORK', 'EXIT_WAIT'], 'demo', [])
    >>> [e.h.stamp.lamport for e in done.trace.processes[("h", 1)].events]   # fork 0 -> child's exit 1 -> wait 2
    [0, 2]
    >>> from sysweave.schemas.clocks import hlc_unpack          # all three at 1 s = 65536 ticks: c counts
    >>> [hlc_unpack(e.h.stamp.hlc) for e in done.trace.processes[("h", 1)].events]
    [(65536, 0), (65536, 2)]
    >>> build_trace(trace_events(done.trace), b"t" * 16, label="demo").trace == done.trace   # idempotent
    True
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from sysweave.schemas.events import CausalStamp, Event, UnifiedTrace
from sysweave.streams.pipeline import assembly, causality, clocksync, fdresources, fdtrack, hlc, streamedges
from sysweave.streams.pipeline.assembly import assemble, trace_events

__all__ = ["FINISHED", "STEPS", "CausalEdges", "CausalStamps", "ClockSync", "FinishedTrace", "Step", "apply_stamps", "assembly",
           "build_trace", "causality", "clocksync", "fdresources", "fdtrack", "hlc", "streamedges",
           "trace_events"]


class Step(Protocol):
    """One pipeline stage: adjust ``trace`` (in place or not) and return it; append what failed to ``warnings``."""

    name: str

    def __call__(self, trace: UnifiedTrace, warnings: list[str]) -> UnifiedTrace: ...


class CausalEdges:
    """Pipe and TCP edges (``streamedges.derive_edges``) added to the trace, deduplicated by their derived ids."""

    name = "causal-edges"

    def __call__(self, trace: UnifiedTrace, warnings: list[str]) -> UnifiedTrace:
        causality.add_derived_edges(trace)
        return trace


class ClockSync:
    """Offsets from cross-host TCP edges (send -> receive), and every time of a corrected host shifted once."""

    name = "clock-sync"

    def __call__(self, trace: UnifiedTrace, warnings: list[str]) -> UnifiedTrace:
        pairs = clocksync.cross_host_pairs(trace)
        if not pairs:
            return trace
        try:
            offsets = clocksync.estimate_offsets(pairs, clocksync.choose_reference(trace))
        except clocksync.InconsistentClocks as exc:
            warnings.append(f"clock sync: {exc}")
            return trace
        clocksync.correct_trace(trace, offsets)
        return trace


class CausalStamps:
    """Lamport restamping and hybrid logical clocks, in one pass over ``causality.causal_order``: Lamport
    values consistent with program order and every edge (raised only where needed), HLCs from the corrected
    wall clock (``hlc``); each event rewritten at most once, and each edge given its destination's stamps."""

    name = "causal-stamps"

    def __call__(self, trace: UnifiedTrace, warnings: list[str]) -> UnifiedTrace:
        apply_stamps(trace, self.stamps(trace))
        return trace

    def stamps(self, trace: UnifiedTrace) -> dict[bytes, tuple[int, int]]:
        """The new stamp (lamport, hlc) of every event and edge whose stamp changes, without rewriting any
        (``causality.causal_stamps``); ``apply_stamps`` applies them, ``wire.encode_finished`` encodes with them."""
        return causality.causal_stamps(trace)


def apply_stamps(trace: UnifiedTrace, stamps: dict[bytes, tuple[int, int]]) -> None:
    """Rewrite every event and edge of ``trace`` that ``stamps`` gives a new (lamport, hlc) stamp (once each)."""
    if not stamps:
        return
    with_stamp = causality.with_stamp
    for p in trace.processes.values():
        p.events = [e if (st := stamps.get(e.h.event_id)) is None else with_stamp(e, CausalStamp(*st))
                    for e in p.events]
    trace.edges = [x if (st := stamps.get(x.h.event_id)) is None  # type: ignore[misc]
                   else with_stamp(x, CausalStamp(*st)) for x in trace.edges]


STEPS: tuple[Step, ...] = (CausalEdges(), ClockSync(), CausalStamps())
# For events that already went through STEPS (a stream worker's emitted trace): assembly alone rebuilds the
# same trace, and running STEPS again would change nothing (idempotent, tested) but cost as much as the
# first time. The validator service uses it: it trusts the worker's finished trace.
FINISHED: tuple[Step, ...] = ()


@dataclass
class FinishedTrace:
    """A built trace and what the steps could not do (e.g. clock constraints with no common solution).

    ``pending``: causal stamps computed but not yet written into the events (``build_trace(...,
    defer_stamps=True)``): event or edge id -> its (lamport, hlc); empty once applied (:meth:`applied`)."""

    trace: UnifiedTrace
    warnings: list[str] = field(default_factory=list)
    pending: dict[bytes, tuple[int, int]] = field(default_factory=dict)

    def applied(self) -> UnifiedTrace:
        """The trace with every pending stamp written into its events (what ``build_trace`` returns by default)."""
        apply_stamps(self.trace, self.pending)
        self.pending = {}
        return self.trace


def build_trace(events: Iterable[Event], trace_id: bytes, label: str = "", *, late_events: int = 0,
                steps: Sequence[Step] = STEPS, defer_stamps: bool = False) -> FinishedTrace:
    """THE pipeline: assemble ``events`` (any order, duplicates allowed) into a closed trace with id
    ``trace_id`` (16 bytes) and ``label``, then run ``steps`` in order. ``late_events``: how many events
    arrived after the trace first closed (the stream buffer counts them).

    ``defer_stamps``: a :class:`CausalStamps` step (it must be the last) computes the stamps into
    ``FinishedTrace.pending`` instead of rewriting every event; for a caller that encodes the trace at once
    (``wire.encode_finished``, the stream worker): the same bytes, without rebuilding one frozen event per
    event. Everything else in the trace is final."""
    trace = assemble(events, trace_id)
    trace.closed = True
    trace.label = label
    trace.late_events = late_events
    warnings: list[str] = []
    pending: dict[bytes, tuple[int, int]] = {}
    for i, step in enumerate(steps):
        if defer_stamps and isinstance(step, CausalStamps):
            if i != len(steps) - 1:
                raise ValueError("defer_stamps: the CausalStamps step must be the last step")
            pending = step.stamps(trace)
            continue
        trace = step(trace, warnings)
    return FinishedTrace(trace, warnings, pending)
