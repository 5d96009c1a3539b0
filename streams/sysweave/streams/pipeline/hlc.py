"""Hybrid logical clock stamps of a finished trace (pure), after clock correction.

Kulkarni et al.'s HLC (``sysweave.schemas.clocks.HybridLogicalClock``) run over the trace as if every
thread had carried one: a clock per thread (``host/pid/tid``) ticks along program order (events sorted by
``mono_ns``, then ``event_id``) and merges along every causal edge (fork, exit->wait, pipe, TCP). The
physical time of an event is its **corrected** wall clock (``h.wall_ns``, Unix ns, after clock sync), in
HLC ticks of 2**-16 s (~15.26 us). Guarantees, for every event e:

* e -> f (program order or an edge, transitively) implies hlc(e) < hlc(f) (packed values compare as (l, c));
* l(e) = the largest physical time (in ticks) of any event in e's causal past, e included: never below e's
  own corrected time, and ahead of it by at most how far a causal predecessor's corrected time lies ahead,
  i.e. within the clock bound. When clock sync holds (every receive ends after its send starts), l(e) is at
  most e's own end time (``wall_ns + duration_ns``): a blocking receive can learn of a send that started
  while it waited, nothing later.
* the logical part c counts events with the same l along a causal chain (16 bits; on overflow l advances one
  tick, as the clock class does).

Worked example (ticks): host A sends at pt 100 (stamp (100, 0)); host B's blocking receive started at pt 98
and returned at 103 -> (max(98, 100), 0 + 1) = (100, 1); B's next event at pt 104 -> (104, 0).

Events on a cycle of program order and edges (a capture anomaly) cannot be ordered; they are stamped in
program order from the predecessors already stamped, so every event still carries a real stamp.
"""

from __future__ import annotations

from collections import defaultdict, deque

from sysweave.schemas.clocks import HybridLogicalClock
from sysweave.schemas.events import UnifiedTrace

__all__ = ["hlc_stamps"]


def hlc_stamps(trace: UnifiedTrace) -> dict[bytes, int]:
    """Packed HLC value (``clocks.hlc_pack``) per event id of every process event of ``trace``."""
    node: dict[bytes, tuple[str, int, int]] = {}
    wall: dict[bytes, int] = {}
    order: list[bytes] = []  # program order, thread by thread
    prev: dict[bytes, bytes] = {}  # event -> its program-order predecessor
    for p in trace.processes.values():
        last: dict[int, bytes] = {}
        for e in sorted(p.events, key=lambda x: (x.h.mono_ns, x.h.event_id)):
            eid = e.h.event_id
            node[eid] = (e.h.host_id, e.h.pid, e.h.tid)
            wall[eid] = e.h.wall_ns
            order.append(eid)
            if e.h.tid in last:
                prev[eid] = last[e.h.tid]
            last[e.h.tid] = eid
    remote: dict[bytes, list[bytes]] = defaultdict(list)  # edge sources per destination
    succ: dict[bytes, list[bytes]] = defaultdict(list)
    indeg = {eid: int(eid in prev) for eid in node}
    for eid, p_ in prev.items():
        succ[p_].append(eid)
    for edge in trace.edges:
        if edge.src in node and edge.dst in node and edge.src != edge.dst:
            remote[edge.dst].append(edge.src)
            succ[edge.src].append(edge.dst)
            indeg[edge.dst] += 1

    now = [0]  # the physical time the clocks read: the event being stamped
    clocks: dict[tuple[str, int, int], HybridLogicalClock] = {}
    stamp: dict[bytes, int] = {}

    def tick(eid: bytes) -> None:
        clock = clocks.get(node[eid])
        if clock is None:
            clock = clocks[node[eid]] = HybridLogicalClock(physical_ns=lambda: now[0])
        now[0] = max(wall[eid], 0)
        received = sorted(stamp[s] for s in remote.get(eid, ()) if s in stamp)
        if received:
            for r in received:  # several incoming edges: merge each (each merge also ticks)
                v = clock.update(r)
        else:
            v = clock.now()
        stamp[eid] = v

    queue = deque(eid for eid in order if indeg[eid] == 0)
    while queue:
        cur = queue.popleft()
        tick(cur)
        for nxt in succ.get(cur, ()):
            indeg[nxt] -= 1
            if indeg[nxt] == 0:
                queue.append(nxt)
    for eid in order:  # left over: on a cycle
        if eid not in stamp:
            tick(eid)
    return stamp
