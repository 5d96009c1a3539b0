"""Cross-host clock offsets from matched TCP send/receive pairs, with explicit bounds (pure).

For hosts A (reference) and B, let theta = B's clock - A's clock. A message sent by A at s (A's clock) and
received by B, its receive returning at r (B's clock), took a delay d >= 0, so r = s + theta + d and
theta <= r - s. A message from B to A gives theta >= s_B - r_A. Every pair narrows the interval
[lo, hi]; the estimate is its midpoint and the bound its half-width (NTP's min-delay reasoning). Worked
example: A->B with r - s = 5.2 ms and B->A with s - r = 4.8 ms give theta in [4.8, 5.2] ms: 5.0 ± 0.2 ms.

Correcting B's wall times by theta keeps every receive after its send, because theta lies inside every
pair's constraint. Hosts without a direct pair with the reference are chained through others (bounds add).
Drift: when pairs cover a long trace, the interval is computed separately for the first and second half
and the slope between the two midpoints is reported in parts per billion.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

from sysweave.schemas.errors import StreamError
from sysweave.schemas.events import CausalStamp, ClockEstimate, EdgeKind, EventHeader, SyscallSpan, UnifiedTrace

__all__ = ["InconsistentClocks", "Offset", "choose_reference", "correct_trace", "cross_host_pairs", "estimate_offsets"]


class InconsistentClocks(StreamError, ValueError):
    """Constraints with no common solution (lo > hi): a capture or matching error, reported, never hidden."""


@dataclass(frozen=True, slots=True)
class Offset:
    host: str
    reference: str
    lo: int  # ns
    hi: int
    samples: int
    drift_ppb: int = 0

    @property
    def estimate(self) -> int:
        return (self.lo + self.hi) // 2

    @property
    def bound(self) -> int:
        return (self.hi - self.lo + 1) // 2


def _interval(pairs: list[tuple[SyscallSpan, SyscallSpan]], a: str, b: str) -> tuple[int, int, int]:
    """[lo, hi] for theta = clock(b) - clock(a) from pairs between the two hosts."""
    lo, hi, n = -(1 << 62), 1 << 62, 0
    for send, recv in pairs:
        s = send.h.wall_ns
        r = recv.h.wall_ns + recv.h.duration_ns  # the receive returned after the data arrived
        if send.h.host_id == a and recv.h.host_id == b:
            hi = min(hi, r - s)
            n += 1
        elif send.h.host_id == b and recv.h.host_id == a:
            lo = max(lo, s - r)
            n += 1
    return lo, hi, n


def estimate_offsets(pairs: Iterable[tuple[SyscallSpan, SyscallSpan]], reference: str) -> dict[str, Offset]:
    """Offset of every host reachable from ``reference`` through matched pairs."""
    pairs = list(pairs)
    by_link: dict[tuple[str, str], list[tuple[SyscallSpan, SyscallSpan]]] = defaultdict(list)
    for s, r in pairs:
        x, y = sorted((s.h.host_id, r.h.host_id))
        by_link[(x, y)].append((s, r))
    out = {reference: Offset(reference, reference, 0, 0, 0)}
    frontier = [reference]
    while frontier:
        a = frontier.pop()
        for (x, y), link in by_link.items():
            if a not in (x, y):
                continue
            b = y if a == x else x
            if b in out:
                continue
            lo, hi, n = _interval(link, a, b)
            if n == 0:
                continue
            if lo > hi:
                raise InconsistentClocks(f"clock constraints between {a} and {b} conflict: lo {lo} ns > hi {hi} ns")
            if lo == -(1 << 62) or hi == 1 << 62:
                continue  # one direction only: no two-sided bound; try another path
            base = out[a]
            drift = _drift(link, a, b)
            out[b] = Offset(b, reference, base.lo + lo, base.hi + hi, n, drift)
            frontier.append(b)
    return out


def _drift(link: list[tuple[SyscallSpan, SyscallSpan]], a: str, b: str) -> int:
    times = sorted(s.h.wall_ns for s, _ in link)
    if len(times) < 8 or times[-1] - times[0] < 10_000_000_000:  # under 10 s: drift is below resolution
        return 0
    mid = times[len(times) // 2]
    halves = [[p for p in link if p[0].h.wall_ns < mid], [p for p in link if p[0].h.wall_ns >= mid]]
    est = []
    for half in halves:
        lo, hi, n = _interval(half, a, b)
        if n == 0 or lo > hi or lo == -(1 << 62) or hi == 1 << 62:
            return 0
        est.append(((lo + hi) / 2, sum(p[0].h.wall_ns for p in half) / len(half)))
    (o1, t1), (o2, t2) = est
    return int((o2 - o1) / (t2 - t1) * 1e9) if t2 != t1 else 0


def choose_reference(trace: UnifiedTrace) -> str:
    """The host of the root process (the one without a parent), else the first host by name."""
    roots = sorted(p.host_id for p in trace.processes.values() if p.parent is None)
    hosts = sorted({p.host_id for p in trace.processes.values()})
    return roots[0] if roots else (hosts[0] if hosts else "")


def cross_host_pairs(trace: UnifiedTrace) -> list[tuple[SyscallSpan, SyscallSpan]]:
    """(send, receive) of every TCP edge whose ends lie on different hosts: what offsets are estimated from."""
    if len({p.host_id for p in trace.processes.values()}) < 2 or not any(x.kind is EdgeKind.TCP for x in trace.edges):
        return []  # one host, or no TCP edge: nothing to estimate (and no index of every event to build)
    events = {e.h.event_id: e for p in trace.processes.values() for e in p.events}
    out = []
    for edge in trace.edges:
        if edge.kind is not EdgeKind.TCP:
            continue
        s, r = events.get(edge.src), events.get(edge.dst)
        if isinstance(s, SyscallSpan) and isinstance(r, SyscallSpan) and s.h.host_id != r.h.host_id:
            out.append((s, r))
    return out


def correct_trace(trace: UnifiedTrace, offsets: dict[str, Offset]) -> None:
    """Shift every wall time of each corrected host by its offset estimate (true = observed - offset) — events,
    process spans, edges (stamped with their destination's host), host and lost records — and record a
    ClockEstimate per corrected host. A host that already has a ClockEstimate in the trace was corrected
    before (the trace is being rebuilt from its own output) and is left alone, so correction happens once."""
    seen = {c.host for c in trace.clocks}
    shift = {h: off.estimate for h, off in offsets.items() if h != off.reference and h not in seen}
    if not shift:
        return

    def moved(e: Any) -> Any:
        d = shift.get(e.h.host_id)
        return replace(e, h=replace(e.h, wall_ns=e.h.wall_ns - d)) if d else e

    for key, p in trace.processes.items():
        d = shift.get(key[0])
        if d:
            p.events = [moved(e) for e in p.events]
            p.start_wall_ns -= d
            p.end_wall_ns -= d
    trace.edges = [moved(e) for e in trace.edges]
    trace.hosts = [moved(e) for e in trace.hosts]
    trace.lost = [moved(e) for e in trace.lost]
    for host in sorted(shift):
        off = offsets[host]
        eid = (b"clock:" + off.host.encode())[:16].ljust(16, b"\0")
        h = EventHeader(eid, off.host, 0, 0, 0, 0, 0, CausalStamp())
        trace.clocks.append(ClockEstimate(h, off.host, off.reference, off.estimate, off.bound, off.drift_ppb, off.samples))
