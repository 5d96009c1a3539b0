"""Traces for the store tests: one with every event type and every table, random ones derived from the
column map (hypothesis), a big synthetic one, and a canonical form to compare a trace with its read-back."""

from __future__ import annotations

import os
import typing
from typing import Any

from hypothesis import strategies as st

from sysweave.schemas.events import (
    CausalEdge,
    CausalStamp,
    ClockEstimate,
    ComputeBlock,
    EdgeKind,
    EventHeader,
    FileState,
    FunctionAggregate,
    GpuKernel,
    GpuMemoryTransfer,
    GpuSample,
    HostInfo,
    LostEvents,
    Mark,
    MemcpyKind,
    ProcessEvent,
    ProcessEventType,
    ProcessSpan,
    SyscallAggregate,
    SyscallSpan,
    TranspilerDecision,
    UnifiedTrace,
)
from sysweave.schemas.rows import EVENT_TABLES, TRACE_LEVEL, Column, EventTable

T0 = 1_795_881_600_000_000_000  # 2026-11-28, ns
WALL = st.integers(T0, T0 + 10**15)  # within ~11 days: few partitions per insert
HOSTS = ("host-a", "host-b")


def header(seq: int, host: str = "host-a", pid: int = 100, mono: int = 0) -> EventHeader:
    return EventHeader(seq.to_bytes(8, "big") * 2, host, pid, pid, mono or 1_000 + seq, T0 + seq * 1_000, seq % 7,
                       CausalStamp(seq, (seq << 16) + 3))


def every_event_trace() -> UnifiedTrace:
    """One of each event type (and odd values: undecodable bytes, NULLs, bytes and tuple args, max ints)."""
    tr = UnifiedTrace(os.urandom(16), closed=True, late_events=3)
    root = ProcessSpan("host-a", 100, None, ("python3", "job.py", "caf\udcff"), T0, T0 + 10**9, 0, None)
    child = ProcessSpan("host-b", 200, ("host-a", 100), ("worker",), T0 + 10, T0 + 10**8, None, 9)
    tr.processes = {("host-a", 100): root, ("host-b", 200): child}
    root.events += [
        SyscallSpan(header(1), 257, "openat", 3, {"path": "/etc/\udcffx", "flags": 524288, "dirfd": -100}, None, 0, 2),
        SyscallSpan(header(2), 1, "write", 5, {"fd": 1, "raw": b"\x00\xff", "fds": (3, 4), "names": ("a", "b"),
                                               "ok": True, "none": None}, b"hi\x00\xff\n", 5, 3),
        SyscallSpan(header(3), 0, "read", -2, {}, None, 0, 4),
        ProcessEvent(header(4), ProcessEventType.FORK, 1, 200, "", (), None, None, "python3"),
        SyscallAggregate(header(5), 0, "read", 10, 1, 12_345, (0, 1, 2**64 - 1)),
        GpuKernel(header(6), "sgemm_128x128", 1, 7, (128, 1, 1), (256, 1, 1), 42),
        GpuMemoryTransfer(header(7), MemcpyKind.DTOH, 1 << 30, 1, 7, 43),
        ComputeBlock(header(8), "matmul 512", "gemm", 262_144, "mm_kernel", "sdk", "D17", {"dtype": "f32", "n": 512}),
        TranspilerDecision(header(9), "D17", "wc.py:12", "mm_kernel", "loop-vectorised", "simd8", ("scalar", "simd4"),
                           "no carried dependency", "log", {"width": 8}),
        Mark(header(18), "phase-2", {"iteration": 3}),
        FileState(header(19), "/w/out.txt", True, "file", 0o644, 2, "9f" * 32, b"o\xff", "", "/w"),
        FileState(header(20), "/w/gone", False),
        GpuSample(header(21), 0, 0, "NVIDIA H200", 87, None, 12 << 30, 141 << 30, None, 1980),
        FunctionAggregate(header(22), "cos", "libm.so.6", 1_000, 5_000, (0, 10, 990), "uprobe"),
        FunctionAggregate(header(23), "mm_kernel", "./mm", 4, 2_000_000, (0, 0, 4), "uprobe"),  # D17's target
    ]
    child.events += [
        ProcessEvent(header(10, "host-b", 200), ProcessEventType.EXEC, 100, 0, "/usr/bin/worker", ("worker", "-v"), None, None,
                     "worker"),
        ProcessEvent(header(11, "host-b", 200), ProcessEventType.EXIT, 100, 0, "", (), -1, 9, "worker"),
    ]
    tr.edges = [CausalEdge(header(12, "host-b", 200), header(4).event_id, header(10).event_id, EdgeKind.FORK, ""),
                CausalEdge(header(13), header(2).event_id, header(3).event_id, EdgeKind.TCP, "10.0.0.1:80")]
    tr.clocks = [ClockEstimate(header(14, "host-b", 0), "host-b", "host-a", -1_500_000, 20_000, -3, 17)]
    tr.hosts = [HostInfo(header(15, "host-a", 0), "node-a", "boot-1", "6.18.0", "x86_64", 123_456, ("10.0.0.1", "::1")),
                HostInfo(header(16, "host-b", 0), "node-b", "", "", "", -5, ())]
    tr.lost = [LostEvents(header(17), "ringbuf", 1_000, "ring buffer full")]
    return tr


def canonical(tr: UnifiedTrace) -> dict[str, Any]:
    def key(e: Any) -> tuple[int, bytes]:
        return e.h.mono_ns, e.h.event_id

    return {
        "trace_id": tr.trace_id, "closed": tr.closed, "late_events": tr.late_events,
        "processes": {k: (p.host_id, p.pid, p.parent, p.argv, p.start_wall_ns, p.end_wall_ns, p.exit_code, p.signal,
                          sorted(p.events, key=key)) for k, p in tr.processes.items()},
        "edges": sorted(tr.edges, key=lambda e: (e.src, e.dst, int(e.kind), e.h.event_id)),
        **{name: sorted(getattr(tr, name), key=key) for name in ("clocks", "hosts", "lost")},
    }


# --- hypothesis: every event type, values drawn within each column's type --------------------------------

_INTS = {"UInt8": (0, 2**8 - 1), "UInt16": (0, 2**16 - 1), "UInt32": (0, 2**32 - 1), "UInt64": (0, 2**64 - 1),
         "Int32": (-(2**31), 2**31 - 1), "Int64": (-(2**63), 2**63 - 1)}
text = st.text(max_size=12)
args = st.dictionaries(st.text(min_size=1, max_size=8), st.one_of(
    st.none(), st.booleans(), st.integers(-(2**63), 2**64 - 1), text, st.binary(max_size=12),
    st.lists(st.integers(-5, 5), min_size=1, max_size=3).map(tuple), st.lists(text, min_size=1, max_size=3).map(tuple)),
    max_size=4)


def _value(col: Column, hint: Any) -> st.SearchStrategy[Any]:
    if typing.get_origin(hint) is dict:
        return args
    if hint is bool:
        return st.booleans()
    if hint is bytes and col.name not in ("src", "dst"):
        return st.binary(max_size=40)
    if col.name == "payload":
        return st.none() | st.binary(min_size=1, max_size=40)
    if col.name in ("src", "dst"):
        return st.binary(min_size=16, max_size=16)
    t = col.type
    if t.startswith("Nullable("):
        return st.none() | st.integers(*_INTS[t[9:-1]])
    if t == "Array(String)":
        return st.lists(text, max_size=3).map(tuple)
    if t.startswith("Array("):
        return st.lists(st.integers(*_INTS[t[6:-1]]), max_size=4).map(tuple)
    if t == "String":
        return text
    if isinstance(hint, type) and issubclass(hint, int) and hint is not int:  # an IntEnum
        return st.sampled_from(list(hint))
    return st.integers(*_INTS[t])


def event_strategy(table: EventTable) -> st.SearchStrategy[Any]:
    hints = typing.get_type_hints(table.cls)
    head = st.builds(EventHeader, event_id=st.binary(min_size=16, max_size=16), host_id=st.sampled_from(HOSTS),
                     pid=st.sampled_from((1, 2, 2**32 - 1)), tid=st.integers(0, 2**32 - 1), mono_ns=st.integers(0, 2**64 - 1),
                     wall_ns=WALL, duration_ns=st.integers(0, 2**64 - 1),
                     stamp=st.builds(CausalStamp, st.integers(0, 2**64 - 1), st.integers(0, 2**64 - 1)))
    return st.builds(table.cls, head, *[_value(c, hints[c.name]) for c in table.fields])


@st.composite
def traces(draw: Any) -> UnifiedTrace:
    events = draw(st.lists(st.one_of([event_strategy(t) for t in EVENT_TABLES]), max_size=25,
                           unique_by=lambda e: e.h.event_id))
    tr = UnifiedTrace(os.urandom(16), closed=draw(st.booleans()), late_events=draw(st.integers(0, 2**64 - 1)),
                      label=draw(text))
    seen_edges: set[tuple[bytes, bytes]] = set()
    for e in events:
        level = TRACE_LEVEL.get(type(e))
        if level == "edges":
            if (e.src, e.dst) in seen_edges:  # causal_edges is keyed by (src, dst): one edge per pair
                continue
            seen_edges.add((e.src, e.dst))
        if level is not None:
            getattr(tr, level).append(e)
            continue
        key = (e.h.host_id, e.h.pid)
        if key not in tr.processes:
            parent = draw(st.none() | st.tuples(st.sampled_from(HOSTS), st.integers(0, 2**32 - 1)))
            tr.processes[key] = ProcessSpan(key[0], key[1], parent, draw(st.lists(text, max_size=3).map(tuple)),
                                            draw(WALL), draw(st.integers(0, 2**64 - 1)),
                                            draw(st.none() | st.integers(*_INTS["Int32"])),
                                            draw(st.none() | st.integers(*_INTS["Int32"])))
        tr.processes[key].events.append(e)
    return tr


# --- big -----------------------------------------------------------------------------------------------

def big_trace(n_events: int, processes: int = 20) -> UnifiedTrace:
    """``n_events`` syscall spans (args on all, payloads on half) spread over ``processes`` processes."""
    tr = UnifiedTrace(os.urandom(16), closed=True)
    per = n_events // processes
    seq = 0
    for p in range(processes):
        pid = 1000 + p
        span = ProcessSpan("host-a", pid, ("host-a", 1000) if p else None, ("job", str(p)), T0, T0 + 10**10, 0)
        evs: list[Any] = []
        for i in range(per):
            seq += 1
            h = EventHeader(seq.to_bytes(16, "big"), "host-a", pid, pid, seq * 100, T0 + seq * 100, 50, CausalStamp(seq, seq))
            if i % 2:
                evs.append(SyscallSpan(h, 1, "write", 64, {"fd": 1, "count": 64}, b"x" * 64, 64, 2))
            else:
                evs.append(SyscallSpan(h, 257, "openat", -2, {"path": f"/tmp/f{i}", "flags": 0}, None, 0, 4))
        span.events = evs
        tr.processes[("host-a", pid)] = span
    return tr
