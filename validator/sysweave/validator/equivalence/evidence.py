"""Is the evidence complete enough for a verdict? (pure) — "no verdict from a guess" (issue 17).

A verdict stands only on complete evidence for what it compares. Two kinds of gap:

* **capture gaps** (:func:`capture_gaps`), per run: events lost (ring buffer, queue, undecodable records),
  an exec that succeeded but whose exec record is missing, a process whose exit was not recorded although
  it is gone. Any of them can make either verdict wrong (a lost write looks like a missing effect, a lost
  exec hides a program), so neither EQUIVALENT nor DIVERGENT may stand on such a run: the harness runs that
  side again (at most :data:`MAX_RERUNS` times), then the validation is undecided (exit 2) with the reason.
* **comparison gaps** (:func:`comparison_gaps`), per verdict: payloads compared only up to the capture cap
  and files whose final state is unknown. A difference found in what *was* compared is certain, so they
  block only EQUIVALENT (rerunning does not help: the cap and the missing state are the same next time).

Never "equivalent with a lowered confidence": a gap makes the answer "could not decide".

    >>> from sysweave.schemas.events import EventHeader, ProcessEvent, ProcessEventType
    >>> def h(pid, t): return EventHeader(bytes([t]) * 16, "h", pid, pid, t, t)
    >>> evs = [ProcessEvent(h(10, 1), ProcessEventType.FORK, parent_pid=10, child_pid=11),
    ...        ProcessEvent(h(10, 2), ProcessEventType.WAIT, parent_pid=10, child_pid=11, exit_code=0)]
    >>> [g.kind for g in capture_gaps(evs, {"ringbuf": 3, "aggregate_table_full": 9})]
    ['lost_events', 'exit_not_recorded']
    >>> describe(capture_gaps(evs, {"ringbuf": 3}))
    '3 events lost (ringbuf: 3); the exit of pid 11 was not recorded (its parent reaped it)'
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sysweave.schemas.events import Event, LostEvents, ProcessEvent, ProcessEventType, SyscallSpan
from sysweave.validator.equivalence.model import Obs

__all__ = ["MAX_RERUNS", "STATISTICS_ONLY", "Gap", "capture_gaps", "comparison_gaps", "describe"]

MAX_RERUNS = 2  # a side whose capture had a gap runs again at most this many times (then: undecided)
# loss sources that lose no event, only exact statistics (the per-(process, syscall) table was full)
STATISTICS_ONLY = frozenset({"aggregate_table_full"})


@dataclass(frozen=True, slots=True)
class Gap:
    """Something a verdict would need that the evidence lacks."""

    kind: str  # lost_events | exec_not_seen | exit_not_recorded | truncated_payload | unknown_content |
    # unknown_file_state
    detail: str  # for people: what is missing, with counts

    def __str__(self) -> str:
        return self.detail


def describe(gaps: Iterable[Gap]) -> str:
    return "; ".join(g.detail for g in gaps)


def _lost(events: list[Event], lost: Mapping[str, int] | None) -> Gap | None:
    counts: Counter[str] = Counter()
    if lost is not None:  # the capture's own counters (its LostEvents events say the same: not added twice)
        counts.update({k: v for k, v in lost.items() if v > 0})
    else:
        for e in events:
            if isinstance(e, LostEvents) and e.count > 0:
                counts[e.source] += e.count
    for source in STATISTICS_ONLY:
        counts.pop(source, None)
    total = sum(counts.values())
    if not total:
        return None
    by = ", ".join(f"{k}: {v:,}" for k, v in sorted(counts.items()))
    return Gap("lost_events", f"{total:,} event{'s' if total != 1 else ''} lost ({by})")


def _pids(pids: Iterable[int]) -> str:
    shown = sorted(set(pids))
    head = ", ".join(str(p) for p in shown[:5])
    return f"pid{'s' if len(shown) > 1 else ''} {head}" + (f" and {len(shown) - 5} more" if len(shown) > 5 else "")


def capture_gaps(events: Iterable[Event], lost: Mapping[str, int] | None = None,
                 running: Callable[[int], bool] | None = None) -> list[Gap]:
    """What one run's capture lost that a verdict could depend on ([] when complete).

    ``lost``: the capture's loss counters by source (None: read the trace's LostEvents events, as for a
    stored trace). ``running``: whether a pid is still alive after the run (a process the run left running
    has no exit yet, which is no loss); None: only processes reaped by a traced parent are checked."""
    evs = list(events)
    gaps = [g for g in (_lost(evs, lost),) if g is not None]
    execs: Counter[tuple[str, int]] = Counter()
    exec_calls: Counter[tuple[str, int]] = Counter()
    forked: set[tuple[str, int]] = set()
    exited: set[tuple[str, int]] = set()
    reaped: set[tuple[str, int]] = set()
    for e in evs:
        if isinstance(e, ProcessEvent):
            key = (e.h.host_id, e.h.pid)
            if e.type is ProcessEventType.EXEC:
                execs[key] += 1
            elif e.type is ProcessEventType.EXIT:
                exited.add(key)
            elif e.type is ProcessEventType.FORK and e.child_pid:
                forked.add((e.h.host_id, e.child_pid))
            elif e.type is ProcessEventType.WAIT and e.child_pid:
                reaped.add((e.h.host_id, e.child_pid))
        elif isinstance(e, SyscallSpan) and e.ret == 0 and e.name in ("execve", "execveat"):
            exec_calls[(e.h.host_id, e.h.pid)] += 1  # an exec that returned in the new image
    unseen = [k[1] for k, n in exec_calls.items() if n > execs[k]]
    if unseen:
        gaps.append(Gap("exec_not_seen", f"the exec of {_pids(unseen)} was not seen (the exec call succeeded, its "
                                         f"record is missing)"))
    no_exit = [k for k in forked if k not in exited]
    reaped_gone = [k[1] for k in no_exit if k in reaped]
    gone = [k[1] for k in no_exit if k not in reaped and running is not None and not running(k[1])]
    if reaped_gone:
        gaps.append(Gap("exit_not_recorded", f"the exit of {_pids(reaped_gone)} was not recorded (its parent "
                                             f"reaped it)"))
    if gone:
        gaps.append(Gap("exit_not_recorded", f"the exit of {_pids(gone)} was not recorded (gone when the run "
                                             f"ended)"))
    return gaps


def comparison_gaps(a: Obs, b: Obs, evidence: Mapping[str, Any]) -> list[Gap]:
    """What an EQUIVALENT verdict of ``a`` and ``b`` would have to guess: payload bytes moved but not captured
    (the per-call capture cap: conversations, and streams rebuilt from payloads), and files in scope whose
    final state is unknown (``evidence["files_unknown"]``, from :func:`~.compare.evidence`). Masked bytes
    (``--runs``) are not missing: they were captured and differ between runs of one program."""
    gaps = []
    moved = missing = 0
    unknown: Counter[str] = Counter()  # bytes moved inside the kernel whose content cannot be known, by why
    for o in (a, b):
        for c in (c for cs in o.conversations.values() for c in cs):
            moved += c.total
            missing += max(c.total - c.captured, 0)
            unknown.update(c.unknown)
        for s in o.streams.values():
            if s.gap is not None:
                moved += s.total
                missing += max(s.total - s.gap, 0)
    missing -= sum(unknown.values())
    if unknown:
        whys = "; ".join(f"{why} ({n:,} bytes)" for why, n in sorted(unknown.items()))
        gaps.append(Gap("unknown_content", f"{sum(unknown.values()):,} bytes moved inside the kernel (splice, tee, "
                                           f"sendfile) cannot be known: {whys}"))
    if missing > 0:
        gaps.append(Gap("truncated_payload", f"{missing:,} of {moved:,} payload bytes were not captured (the "
                                             f"per-call capture size); they cannot be compared"))
    files_unknown = int(evidence.get("files_unknown", 0))
    if files_unknown:
        gaps.append(Gap("unknown_file_state", f"{files_unknown} file(s) in scope have no recorded final state"))
    return gaps
