"""Read a stored trace back into a UnifiedTrace (embedded store or server: anything with ``execute``)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from typing import Any

from sysweave.schemas.events import (
    CausalEdge,
    CausalStamp,
    EdgeKind,
    EventHeader,
    ProcessEvent,
    ProcessEventType,
    ProcessSpan,
    SyscallAggregate,
    SyscallSpan,
    UnifiedTrace,
)
from sysweave.validator.store.base import TraceNotFound

_HEX32 = re.compile(r"^[0-9a-f]{32}$")
_H = "hex(event_id), host_id, pid, tid, mono_ns, wall_ns, duration_ns, lamport, hlc"


def _header(r: Sequence[Any]) -> EventHeader:
    return EventHeader(bytes.fromhex(r[0]), r[1], int(r[2]), int(r[3]), int(r[4]), int(r[5]), int(r[6]),
                       CausalStamp(int(r[7]), int(r[8])))


def load_trace(execute: Callable[[str], Sequence[Sequence[Any]]], trace_id: str) -> UnifiedTrace:
    if not _HEX32.match(trace_id):
        raise ValueError(f"trace id {trace_id!r}: expected 32 hex digits (sysweave query --name traces)")
    where = f"trace_id = '{trace_id}'"
    trace = UnifiedTrace(bytes.fromhex(trace_id), closed=True)
    for r in execute(f"SELECT host_id, pid, parent_host_id, parent_pid, argv, start_wall_ns, end_wall_ns, exit_code "
                     f"FROM processes WHERE {where}"):
        trace.processes[(r[0], int(r[1]))] = ProcessSpan(r[0], int(r[1]), (r[2], int(r[3])) if r[2] else None,
                                                         tuple(r[4]), int(r[5]), int(r[6]), r[7])
    if not trace.processes:
        raise TraceNotFound(f"no trace {trace_id} in this store (sysweave query --name traces lists them)")

    def add(span_key: tuple[str, int], ev: Any) -> None:
        p = trace.processes.get(span_key)
        if p is not None:
            p.events.append(ev)

    for r in execute(f"SELECT {_H}, nr, name, ret, args, hex(payload), payload_len, reason FROM syscall_spans WHERE {where}"):
        args = {k: (tuple(v) if isinstance(v, list) else v) for k, v in json.loads(r[12]).items()}
        payload = bytes.fromhex(r[13]) if r[13] else None
        add((r[1], int(r[2])), SyscallSpan(_header(r), int(r[9]), r[10], int(r[11]), args, payload, int(r[14]), int(r[15])))
    for r in execute(f"SELECT {_H}, type, parent_pid, child_pid, filename, argv, exit_code, signal, comm "
                     f"FROM process_events WHERE {where}"):
        add((r[1], int(r[2])), ProcessEvent(_header(r), ProcessEventType(int(r[9])), int(r[10]), int(r[11]), r[12],
                                            tuple(r[13]), r[14], r[15], r[16]))
    for r in execute(f"SELECT {_H}, nr, name, calls, errors, total_ns, hist_log2 FROM syscall_aggregates WHERE {where}"):
        add((r[1], int(r[2])), SyscallAggregate(_header(r), int(r[9]), r[10], int(r[11]), int(r[12]), int(r[13]),
                                                tuple(int(x) for x in r[14])))
    for r in execute(f"SELECT {_H}, hex(src), hex(dst), kind, detail FROM causal_edges WHERE {where}"):
        trace.edges.append(CausalEdge(_header(r), bytes.fromhex(r[9]), bytes.fromhex(r[10]), EdgeKind(int(r[11])), r[12]))
    for p in trace.processes.values():
        p.events.sort(key=lambda e: (e.h.mono_ns, e.h.event_id))
    return trace
