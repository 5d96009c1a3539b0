"""The stream worker's pure path per span, in-process (no Kafka, no Faust): decode -> buffer -> sightings ->
join plan -> the one pipeline -> encode, through the same functions every version of the worker calls, so a
baseline tree (``SYSWEAVE_BENCH_BASELINE``) runs it unchanged. Prints CPU seconds per 100,000 spans.

    python bench/stream_pure.py [N_SPANS] [N_TRACES]     # default 200,000 spans in 10 traces, 2,000 per message

Self-contained (imports only ``sysweave``), run as a script by ``bench/stream_throughput.py`` with each tree's
components on PYTHONPATH.
"""

from __future__ import annotations

import gc
import sys
import time
from collections import defaultdict
from typing import Any

from sysweave.schemas import codec
from sysweave.schemas.events import CausalStamp, EventHeader, ProcessEvent, ProcessEventType, SyscallSpan, make_event_id
from sysweave.streams.buffer import TraceBuffer, finish
from sysweave.streams.endpoints import EndpointTable, SightingScanner
from sysweave.streams.join import host_infos, plan_tree
from sysweave.streams.pipeline.wire import encode_finished

__all__ = ["batches", "cpu_per_100k", "run"]


def batches(trace_no: int, spans: int, per_batch: int = 2000) -> list[bytes]:
    """One traced process's events as the benchmark's agent sends them: exec, reads on fd 3, exit."""
    seq, pid = 0, 1000 + trace_no

    def h(t: int) -> EventHeader:
        nonlocal seq
        seq += 1
        return EventHeader(make_event_id(trace_no, seq), "bench", pid, pid, t, t, 500, CausalStamp(seq, 0))

    events: list[Any] = [ProcessEvent(h(0), ProcessEventType.EXEC, argv=("bench",))]
    events += [SyscallSpan(h(i + 1), 0, "read", 8, {"fd": 3}) for i in range(spans - 2)]
    events.append(ProcessEvent(h(spans), ProcessEventType.EXIT, exit_code=0))
    return [codec.encode_batch(codec.Batch(trace_no, i, 0, tuple(events[i:i + per_batch])))
            for i in range(0, len(events), per_batch)]


def run(pre: list[list[bytes]]) -> None:
    """Every batch through the worker's steps; each trace closes after its last batch (grace 0)."""
    buf, table, scanner = TraceBuffer(grace_s=0.0), EndpointTable(), SightingScanner()
    shipped: dict[str, int] = defaultdict(int)

    def emit(now: float) -> None:
        for t in buf.ready(now):
            plan = plan_tree(t.key, t.events.values(), table, 10.0, 10.0, whole=not t.lent)
            for s in plan.publish:
                table.add(s)
            for part in plan.parts.values():
                encode_finished(finish(t, part, host_infos(part, table), defer_stamps=True))

    for n, trace in enumerate(pre):
        key = f"bench/{n}".encode()
        for b in trace:
            events = codec.decode_batch(b).events
            buf.add(key, events, 0.0)
            for s in scanner.scan(key, events):
                table.add(s)
            for e in events:
                shipped[e.h.host_id] += 1
        emit(1.0 + n)
    emit(1e9)


def cpu_per_100k(n_spans: int = 200_000, n_traces: int = 10) -> float:
    pre = [batches(t, n_spans // n_traces) for t in range(n_traces)]
    gc.freeze()  # as the worker does (streams.worker.make_app)
    gc.set_threshold(50_000, 50, 100)
    run(pre)  # warm
    t0 = time.process_time()
    run(pre)
    return (time.process_time() - t0) / n_spans * 100_000


if __name__ == "__main__":
    print(f"{cpu_per_100k(*[int(a) for a in sys.argv[1:]]):.3f}")
