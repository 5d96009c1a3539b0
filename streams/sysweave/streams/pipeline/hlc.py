"""Hybrid logical clock stamps of a finished trace (pure), after clock correction.

Kulkarni et al.'s HLC (the rules of ``sysweave.schemas.clocks.HybridLogicalClock``) run over the trace as if
every thread had carried one: a clock per thread (``host/pid/tid``) ticks along program order (events sorted
by ``mono_ns``, then ``event_id``) and merges along every causal edge (fork, exit->wait, pipe, TCP), all of
an event's predecessors at once, in ``causality.causal_order``. The physical time of an event is its
**corrected** wall clock (``h.wall_ns``, Unix ns, after clock sync), in HLC ticks of 2**-16 s (~15.26 us).
Guarantees, for every event e:

* e -> f (program order or an edge, transitively) implies hlc(e) < hlc(f) (packed values compare as (l, c));
* l(e) = the largest physical time (in ticks) of any event in e's causal past, e included (exactly, unless
  more than 65,535 causally chained events share one tick; see c below): never below e's
  own corrected time, and ahead of it by at most how far a causal predecessor's corrected time lies ahead,
  i.e. within the clock bound. When clock sync holds (every receive ends after its send starts), l(e) is at
  most e's own end time (``wall_ns + duration_ns``): a blocking receive can learn of a send that started
  while it waited, nothing later.
* the logical part c counts events with the same l along a causal chain (16 bits; on overflow l advances one
  tick, as the clock class does).

Worked example (ticks): host A sends at pt 100 (stamp (100, 0)); host B's blocking receive, after B's event
stamped (97, 0), started at pt 98 and returned at 103 -> l = max(98, 97, 100) = 100 from the send, c = 0 + 1:
(100, 1); B's next event at pt 104 -> (104, 0).

Events on a cycle of program order and edges (a capture anomaly) cannot be ordered; ``causal_order`` breaks
the cycle at its earliest event, which is stamped from the predecessors already stamped, so every event
still carries a real stamp.
"""

from __future__ import annotations

from sysweave.schemas.clocks import hlc_pack, ns_to_hlc_ticks
from sysweave.schemas.events import UnifiedTrace
from sysweave.streams.pipeline.causality import Visit, causal_order

__all__ = ["hlc_stamps"]


def hlc_stamps(trace: UnifiedTrace, order: list[Visit] | None = None) -> dict[bytes, int]:
    """Packed HLC value (``clocks.hlc_pack``) per event id of every process event of ``trace`` (``order``: a
    ``causal_order(trace)`` already computed).

    In packed form the clock's rules collapse to one line: packed values order as (l, c), so the largest
    predecessor value m carries the largest l and, among predecessors with that l, the largest c; then
    hlc(e) = max(pack(pt(e), 0), m + 1) — (pt, 0) when physical time is ahead of every predecessor, else
    (l_m, c_m + 1), and m + 1 carries into l exactly when c would overflow 16 bits (the clock class's bump).
    """
    stamp: dict[bytes, int] = {}
    for e, prev, srcs in causal_order(trace) if order is None else order:
        m = stamp[prev] if prev is not None else -1
        for x in srcs:
            if stamp[x] > m:
                m = stamp[x]
        stamp[e.h.event_id] = max(hlc_pack(ns_to_hlc_ticks(max(e.h.wall_ns, 0)), 0), m + 1)
    return stamp
