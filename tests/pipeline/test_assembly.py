"""Assembly is a pure function of the multiset of events: order and duplicates do not matter."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from sysweave.schemas.events import (
    CausalStamp,
    EdgeKind,
    EventHeader,
    ProcessEvent,
    ProcessEventType,
    SyscallSpan,
    make_event_id,
)
from sysweave.streams.pipeline.assembly import assemble, trace_events


def build_tree(n_children: int, calls_each: int) -> list:
    """A parent that execs, forks n children (each writes and exits with its index), and waits for each."""
    seq = iter(range(1, 10_000))
    t = [0]

    def h(pid: int) -> EventHeader:
        t[0] += 1000
        s = next(seq)
        return EventHeader(make_event_id(7, s), "host-a", pid, pid, t[0], 10**18 + t[0], 10, CausalStamp(s, 0))

    out: list = [ProcessEvent(h(100), ProcessEventType.EXEC, filename="/bin/job", argv=("job", "-n"))]
    for i in range(n_children):
        child = 200 + i
        out.append(ProcessEvent(h(100), ProcessEventType.FORK, parent_pid=100, child_pid=child))
        out += [SyscallSpan(h(child), 1, "write", 5, {"fd": 1}, b"hello", 5) for _ in range(calls_each)]
        out.append(ProcessEvent(h(child), ProcessEventType.EXIT, exit_code=i))
        out.append(ProcessEvent(h(100), ProcessEventType.WAIT, parent_pid=100, child_pid=child, exit_code=i))
    return out


def snapshot(trace) -> tuple:
    procs = tuple(sorted((k, p.parent, p.argv, p.exit_code, tuple(e.h.event_id for e in p.events))
                         for k, p in trace.processes.items()))
    return procs, tuple((e.src, e.dst, e.kind) for e in trace.edges)


def test_tree_structure_and_edges() -> None:
    trace = assemble(build_tree(3, 2), b"t" * 16)
    assert set(trace.processes) == {("host-a", p) for p in (100, 200, 201, 202)}
    child = trace.processes[("host-a", 201)]
    assert child.parent == ("host-a", 100) and child.exit_code == 1 and child.argv == ("job", "-n")
    kinds = sorted(e.kind for e in trace.edges)
    assert kinds == [EdgeKind.FORK] * 3 + [EdgeKind.EXIT_WAIT] * 3


@given(st.integers(1, 5), st.integers(0, 4), st.randoms(use_true_random=False), st.integers(0, 3))
@settings(max_examples=200)
def test_any_permutation_with_duplicates_assembles_the_same(n: int, calls: int, rng, dups: int) -> None:
    events = build_tree(n, calls)
    reference = snapshot(assemble(events, b"t" * 16))
    shuffled = events + [rng.choice(events) for _ in range(dups)]
    rng.shuffle(shuffled)
    assert snapshot(assemble(shuffled, b"t" * 16)) == reference


def test_reassembling_a_trace_is_idempotent() -> None:
    first = assemble(build_tree(2, 1), b"t" * 16)
    again = assemble(trace_events(first), b"t" * 16)
    assert snapshot(again) == snapshot(first)
