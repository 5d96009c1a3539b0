"""Stream worker throughput and latency through the real broker (issue 4's targets).

  1. throughput: N spans (batches of 2,000 per Kafka message, T traces) are pre-loaded into a fresh events
     topic; one Faust worker process (then two) assembles them; spans/s in steady state = the spans of
     T - 1 traces / (time between the first and the last trace emitted).
  2. latency: spans produced at a fixed rate (10k and 50k spans/s) for D seconds; capture-to-assembled
     latency per trace = emission time - its last span's production time (the worker's grace period of
     G seconds included: a trace cannot close before it), p50/p99.

Needs the local Kafka (make services-up). The worker is started with topic names overridden through
SYSWEAVE_TOPIC_SUFFIX so the benchmark never mixes with real data.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
import uuid

from kafka import KafkaConsumer, KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic

from sysweave.schemas import codec, topics
from sysweave.schemas.events import CausalStamp, EventHeader, ProcessEvent, ProcessEventType, SyscallSpan, make_event_id

BOOT = os.environ.get("SYSWEAVE_BENCH_KAFKA", "127.0.0.1:9092")


def trace_batches(trace_no: int, spans: int, per_batch: int) -> list[bytes]:
    seq = 0
    out = []
    pid = 1000 + trace_no

    def h(t: int) -> EventHeader:
        nonlocal seq
        seq += 1
        return EventHeader(make_event_id(trace_no, seq), "bench", pid, pid, t, t, 500, CausalStamp(seq, 0))

    events: list = [ProcessEvent(h(0), ProcessEventType.EXEC, argv=("bench",))]
    events += [SyscallSpan(h(i + 1), 0, "read", 8, {"fd": 3}) for i in range(spans - 2)]
    events.append(ProcessEvent(h(spans), ProcessEventType.EXIT, exit_code=0))
    for i in range(0, len(events), per_batch):
        out.append(codec.encode_batch(codec.Batch(trace_no, i, time.time_ns(), tuple(events[i:i + per_batch]))))
    return out


def start_workers(n: int, suffix: str) -> list[subprocess.Popen[bytes]]:
    env = {**os.environ, "SYSWEAVE_TOPIC_SUFFIX": suffix}
    return [subprocess.Popen([sys.executable, "-m", "sysweave.cli.main", "streams", "worker", "--kafka", BOOT,
                              "--grace-s", "0.5", "--app-id", f"bench-{suffix}"], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for _ in range(n)]


def throughput(n_spans: int, n_traces: int, workers: int) -> float:
    suffix = uuid.uuid4().hex[:6]
    admin = KafkaAdminClient(bootstrap_servers=BOOT)
    admin.create_topics([NewTopic(topics.TOPIC_EVENTS + suffix, 4, 1), NewTopic(topics.TOPIC_TRACES + suffix, 4, 1)])
    prod = KafkaProducer(bootstrap_servers=BOOT, linger_ms=20, max_request_size=16 << 20)
    for t in range(n_traces):
        for b in trace_batches(t, n_spans // n_traces, 2000):
            prod.send(topics.TOPIC_EVENTS + suffix, key=f"bench/{t}".encode(), value=b)
    prod.flush()
    consumer = KafkaConsumer(topics.TOPIC_TRACES + suffix, bootstrap_servers=BOOT, auto_offset_reset="earliest",
                             consumer_timeout_ms=1000)
    t0 = time.monotonic()
    procs = start_workers(workers, suffix)
    seen: set[bytes] = set()
    first = last = 0.0
    try:
        while len(seen) < n_traces and time.monotonic() - t0 < 600:
            for m in consumer:
                seen.add(m.key)
                last = time.monotonic()
                first = first or last
    finally:
        for p in procs:
            p.terminate()
            p.wait(30)
        consumer.close()
    if len(seen) < n_traces:
        raise RuntimeError(f"only {len(seen)} of {n_traces} traces were emitted")
    # steady state: from the first trace out to the last (excludes Faust's start-up and group join)
    return n_spans * (n_traces - 1) / n_traces / (last - first)


def latency(rate: int, duration_s: float, spans_per_trace: int = 5000) -> tuple[float, float]:
    suffix = uuid.uuid4().hex[:6]
    admin = KafkaAdminClient(bootstrap_servers=BOOT)
    admin.create_topics([NewTopic(topics.TOPIC_EVENTS + suffix, 4, 1), NewTopic(topics.TOPIC_TRACES + suffix, 4, 1)])
    procs = start_workers(1, suffix)
    time.sleep(8)  # join the group
    prod = KafkaProducer(bootstrap_servers=BOOT, linger_ms=5, max_request_size=16 << 20)
    done_at: dict[bytes, float] = {}
    n_traces = int(rate * duration_s / spans_per_trace)
    t0 = time.monotonic()
    for t in range(n_traces):
        for b in trace_batches(t, spans_per_trace, 2000):
            prod.send(topics.TOPIC_EVENTS + suffix, key=f"bench/{t}".encode(), value=b)
        prod.flush()
        done_at[f"bench/{t}".encode()] = time.monotonic()
        target = t0 + (t + 1) * spans_per_trace / rate
        time.sleep(max(target - time.monotonic(), 0))
    consumer = KafkaConsumer(topics.TOPIC_TRACES + suffix, bootstrap_servers=BOOT, auto_offset_reset="earliest",
                             consumer_timeout_ms=1000)
    from sysweave.streams.buffer import trace_id_for

    want = {trace_id_for(k).hex().encode(): k for k in done_at}
    lat = []
    end = time.monotonic() + 120
    while len(lat) < len(want) and time.monotonic() < end:
        for m in consumer:
            if m.key in want:
                lat.append(m.timestamp / 1000 - (time.time() - time.monotonic() + done_at[want[m.key]]))
    for p in procs:
        p.terminate()
        p.wait(30)
    lat.sort()
    return statistics.median(lat), lat[int(0.99 * (len(lat) - 1))]


def main(n_spans: int = 1_000_000, n_traces: int = 100) -> None:
    one = throughput(n_spans, n_traces, 1)
    two = throughput(n_spans, n_traces, 2)
    print(f"stream worker throughput: 1 worker {one:,.0f} spans/s; 2 workers {two:,.0f} spans/s "
          f"({n_spans:,} spans, {n_traces} traces, 2,000 spans per Kafka message)")
    for rate in (10_000, 50_000):
        p50, p99 = latency(rate, 10)
        print(f"latency at {rate:,} spans/s: p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms (grace 0.5 s included)")


if __name__ == "__main__":
    main(*[int(a) for a in sys.argv[1:]])
