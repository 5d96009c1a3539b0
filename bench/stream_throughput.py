"""Stream worker throughput and latency through the real broker (issue 12: >= 100,000 spans/s per worker, more
with two than with one, capture-to-assembled p99 <= 2 s at 50,000 spans/s; the worker's resident memory).

    python -m bench streams [N_SPANS] [N_TRACES] [RUNS] [LATENCY]   # default 400,000 spans, 20 traces, 3 runs, 1

  1. throughput: N spans (batches of 2,000 per Kafka message, T traces, encoded beforehand) are loaded into a
     fresh events topic as fast as the producer goes, once the workers' consumer group is stable (one Faust
     worker process, then two); spans/s in steady state = the spans of T - 1 traces / (time between the first
     and the last trace emitted); end to end = all spans / (last trace emitted - loading began), which counts
     the producer's loading too; the workers' CPU seconds per 100,000 spans over the whole run (loading began to
     the last trace out: every span decoded, assembled and emitted) and their CPU share in steady state (/proc:
     below 1.0 per worker, they waited or another process had the CPU; on a shared machine spans/s follow the
     CPU the workers got, CPU s per 100k spans what they needed).
  2. latency: spans produced at a fixed rate (10k and 50k spans/s; batches encoded before the clock starts) for
     D seconds; capture-to-assembled latency per trace = emission time - its last span's production time (the
     worker's grace period of G seconds included: a trace cannot close before it), p50/p99.
  3. memory: each worker's peak resident set (VmHWM) at the end of its run.

Side by side: with ``SYSWEAVE_BENCH_BASELINE=DIR`` (a checkout of an older commit, e.g. ``git archive`` of it)
every measurement is also taken with workers importing ``sysweave`` from DIR, alternating run by run; medians
of RUNS. Needs the local Kafka (make services-up). The worker is started with topic names overridden through
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
        batch = codec.Batch(trace_no, i, time.time_ns(), tuple(events[i:i + per_batch]))
        out.append(topics.EventBatchMessage(f"bench/{trace_no}".encode(), batch).encode())
    return out


COMPONENTS = ("schemas", "agents", "agents/sdk", "streams", "validator", "cli")


def start_workers(n: int, suffix: str, tree: str = "") -> list[subprocess.Popen[bytes]]:
    env = {**os.environ, "SYSWEAVE_TOPIC_SUFFIX": suffix}
    if tree:  # a baseline checkout's components first on the path (PEP 420 portions: first found wins)
        env["PYTHONPATH"] = os.pathsep.join(os.path.join(tree, c) for c in COMPONENTS)
    return [subprocess.Popen([sys.executable, "-m", "sysweave.cli.main", "streams", "worker", "--kafka", BOOT,
                              "--grace-s", "0.5", "--app-id", f"bench-{suffix}"], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for _ in range(n)]


def peak_rss_mb(p: subprocess.Popen[bytes]) -> float:
    """The process's peak resident set (VmHWM), MiB; 0 when it is gone."""
    try:
        with open(f"/proc/{p.pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def cpu_s(procs: list[subprocess.Popen[bytes]]) -> float:
    """User + system CPU seconds the processes have used so far (threads included)."""
    total = 0.0
    for p in procs:
        try:
            with open(f"/proc/{p.pid}/stat") as f:
                fields = f.read().rpartition(")")[2].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except OSError:
            pass
    return total


def stop(procs: list[subprocess.Popen[bytes]]) -> float:
    """Terminate the workers; the largest peak RSS among them, MiB."""
    rss = max((peak_rss_mb(p) for p in procs), default=0.0)
    for p in procs:
        p.terminate()
    for p in procs:
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:  # Faust's graceful stop can hang on a group leave
            p.kill()
            p.wait(30)
    return rss


def make_topics(suffix: str) -> None:
    """Every topic of ``topics.TOPIC_SPECS`` (with ``suffix``) before a worker starts, as ``sysweave topics create``
    makes them for users: a subscribed topic that appears mid-run (the sampling topic, auto-created by the
    worker's first report) rebalances the group while the worker holds open traces' messages unacknowledged,
    and Faust's ``wait_empty`` then loops until they are (docs/benchmarks.md, the stall seen once)."""
    admin = KafkaAdminClient(bootstrap_servers=BOOT)
    admin.create_topics([NewTopic(spec.name + suffix, spec.partitions or 4, 1) for spec in topics.TOPIC_SPECS])
    admin.close()


def wait_for_group(group: str, members: int, timeout_s: float = 90.0) -> None:
    """Until the workers' consumer group is Stable with ``members`` members holding partitions: loading before
    that lets one worker start alone and a rebalance later redeliver what it held (commits wait for emission)."""
    admin = KafkaAdminClient(bootstrap_servers=BOOT)
    end = time.monotonic() + timeout_s
    try:
        while time.monotonic() < end:
            try:
                g = admin.describe_groups([group]).get(group) or {}
            except Exception:  # the group does not exist yet
                g = {}
            if g.get("group_state") == "Stable" and sum(1 for m in g.get("members", ()) if m.get("member_assignment")) >= members:
                return
            time.sleep(0.5)
    finally:
        admin.close()
    print(f"  (group {group} not stable with {members} members after {timeout_s:.0f} s)", flush=True)


def throughput(n_spans: int, n_traces: int, workers: int, tree: str = "") -> tuple[float, float, float, float, float]:
    """(spans/s in steady state, peak RSS of a worker in MiB, the workers' CPU seconds per 100,000 spans over
    the whole run, their CPU share in steady state of the wall clock then: below 1.0 per worker they waited or were preempted,
    spans/s end to end: all spans / (last trace out - loading began))."""
    suffix = uuid.uuid4().hex[:6]
    make_topics(suffix)
    pre = [trace_batches(t, n_spans // n_traces, 2000) for t in range(n_traces)]
    consumer = KafkaConsumer(topics.TOPIC_TRACES + suffix, bootstrap_servers=BOOT, auto_offset_reset="earliest",
                             consumer_timeout_ms=1000)
    t0 = time.monotonic()
    procs = start_workers(workers, suffix, tree)
    wait_for_group(f"bench-{suffix}", workers)
    prod = KafkaProducer(bootstrap_servers=BOOT, linger_ms=20, max_request_size=16 << 20)
    loading, cpu_loading = time.monotonic(), cpu_s(procs)
    for t, batches in enumerate(pre):
        for b in batches:
            prod.send(topics.TOPIC_EVENTS + suffix, key=f"bench/{t}".encode(), value=b)
    prod.flush()
    prod.close()
    seen: set[bytes] = set()
    first = last = cpu0 = cpu1 = 0.0
    try:
        while len(seen) < n_traces and time.monotonic() - t0 < 600:
            for m in consumer:
                seen.add(m.key)
                last, cpu1 = time.monotonic(), cpu_s(procs)
                if not first:
                    first, cpu0 = last, cpu1
    finally:
        rss = stop(procs)
        consumer.close()
    if len(seen) < n_traces:
        raise RuntimeError(f"only {len(seen)} of {n_traces} traces were emitted")
    # steady state: from the first trace out to the last (excludes Faust's start-up and group join); CPU: every
    # span's whole path (decode, buffer, join, pipeline, encode, Faust and the Kafka clients), from loading
    # began to the last trace out — what a worker spends per span whatever else had the machine's cores
    steady = n_spans * (n_traces - 1) / n_traces
    return (steady / (last - first), rss, (cpu1 - cpu_loading) / n_spans * 100_000, (cpu1 - cpu0) / (last - first),
            n_spans / (last - loading))


def latency(rate: int, duration_s: float, spans_per_trace: int = 5000, tree: str = "") -> tuple[float, float, float]:
    """(p50 s, p99 s, peak worker RSS MiB) of capture-to-assembled at ``rate`` spans/s."""
    suffix = uuid.uuid4().hex[:6]
    make_topics(suffix)
    n_traces = int(rate * duration_s / spans_per_trace)
    pre = [trace_batches(t, spans_per_trace, 2000) for t in range(n_traces)]  # the producer's encoding, not timed
    procs = start_workers(1, suffix, tree)
    wait_for_group(f"bench-{suffix}", 1)
    prod = KafkaProducer(bootstrap_servers=BOOT, linger_ms=5, max_request_size=16 << 20)
    done_at: dict[bytes, float] = {}
    t0 = time.monotonic()
    for t in range(n_traces):
        for b in pre[t]:
            prod.send(topics.TOPIC_EVENTS + suffix, key=f"bench/{t}".encode(), value=b)
        done_at[f"bench/{t}".encode()] = time.monotonic()  # handed over; the producer's thread sends it within 5 ms
        target = t0 + (t + 1) * spans_per_trace / rate
        time.sleep(max(target - time.monotonic(), 0))
    behind = time.monotonic() - (t0 + duration_s)
    prod.flush()
    prod.close()
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
    rss = stop(procs)
    consumer.close()
    if behind > 1.0:
        print(f"  (the producer fell {behind:.1f} s behind the {rate:,} spans/s schedule)", flush=True)
    lat.sort()
    return statistics.median(lat), lat[int(0.99 * (len(lat) - 1))], rss


def pure_path(tree: str = "") -> float:
    """CPU s per 100k spans of the worker's pure path in-process (``bench/stream_pure.py``) with ``tree``'s code."""
    env = dict(os.environ)
    if tree:
        env["PYTHONPATH"] = os.pathsep.join(os.path.join(tree, c) for c in COMPONENTS)
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "stream_pure.py")
    out = subprocess.run([sys.executable, script], env=env, capture_output=True, text=True, check=True)
    return float(out.stdout.strip())


def main(n_spans: int = 400_000, n_traces: int = 20, runs: int = 3, with_latency: int = 1) -> None:
    base = os.environ.get("SYSWEAVE_BENCH_BASELINE", "")
    trees = {"new": ""} | ({"baseline": base} if base else {})
    pure: dict[str, list[float]] = {}
    for _ in range(max(runs, 5)):  # alternating, as everything below
        for name, tree in trees.items():
            pure.setdefault(name, []).append(pure_path(tree))
    for name, xs in pure.items():
        print(f"{name}: pure worker path (decode .. encode, in-process, 200,000 spans): "
              f"{statistics.median(xs):.3f} CPU s per 100k spans (median of {len(xs)}; {min(xs):.3f}-{max(xs):.3f})",
              flush=True)
    thr: dict[tuple[str, int], list[tuple[float, float, float, float, float]]] = {}
    lat: dict[tuple[str, int], list[tuple[float, float, float]]] = {}
    for r in range(runs):
        for workers in (1, 2):
            for name, tree in trees.items():
                v = throughput(n_spans, n_traces, workers, tree)
                thr.setdefault((name, workers), []).append(v)
                print(f"  run {r + 1} {name}: {workers} worker(s) {v[0]:,.0f} spans/s ({v[4]:,.0f} end to end), "
                      f"peak RSS {v[1]:.0f} MiB, "
                      f"{v[2]:.2f} CPU s per 100k spans, CPU share {v[3]:.2f}", flush=True)
        for rate in (10_000, 50_000) if with_latency else ():
            for name, tree in trees.items():
                w = latency(rate, 10, tree=tree)
                lat.setdefault((name, rate), []).append(w)
                print(f"  run {r + 1} {name}: {rate:,} spans/s p50 {w[0] * 1000:.0f} ms p99 {w[1] * 1000:.0f} ms, "
                      f"peak RSS {w[2]:.0f} MiB", flush=True)
    med = statistics.median
    for name in trees:
        one, two = thr[(name, 1)], thr[(name, 2)]
        print(f"{name}: stream worker throughput (median of {runs}): 1 worker {med(x[0] for x in one):,.0f} spans/s; "
              f"2 workers {med(x[0] for x in two):,.0f} spans/s ({n_spans:,} spans, {n_traces} traces, 2,000 spans "
              f"per Kafka message); peak worker RSS {med(x[1] for x in one):.0f} / {med(x[1] for x in two):.0f} MiB; "
              f"worker CPU per 100k spans {med(x[2] for x in one):.2f} / {med(x[2] for x in two):.2f} s, "
              f"CPU share {med(x[3] for x in one):.2f} / {med(x[3] for x in two):.2f}; end to end "
              f"{med(x[4] for x in one):,.0f} / {med(x[4] for x in two):,.0f} spans/s")
        for rate in (10_000, 50_000) if with_latency else ():
            xs = lat[(name, rate)]
            print(f"{name}: latency at {rate:,} spans/s: p50 {med(x[0] for x in xs) * 1000:.0f} ms, "
                  f"p99 {med(x[1] for x in xs) * 1000:.0f} ms (grace 0.5 s included); peak RSS "
                  f"{med(x[2] for x in xs):.0f} MiB")


if __name__ == "__main__":
    main(*[int(a) for a in sys.argv[1:]])
