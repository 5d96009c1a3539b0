"""Faust workers: thin glue around the pure stream core (buffer, join, pipeline, sampling).

    sysweave streams worker --kafka BOOTSTRAP

Several workers share TOPIC_EVENTS's partitions through Kafka's consumer group. Each:
  1. decodes agent batches (a bad message goes to TOPIC_DEAD_LETTER with the reason; the worker goes on),
     publishes the connections it sees to TOPIC_ENDPOINTS (``join.SightingScanner``) and keeps every worker's
     sightings in its copy of the endpoint table (``join.EndpointTable``, a reader thread over all partitions),
  2. buffers them per trace key and, when a trace closes, asks the join (``join.plan_tree``): hold it while a
     peer's half is expected, forward the windows (or the whole tree) that belong to another trace back to
     TOPIC_EVENTS under that trace's key (header ``sysweave.joined``), and run the one pipeline on the rest
     (``buffer.finish`` -> ``pipeline.build_trace``), emitted to TOPIC_TRACES as a codec batch (key = trace
     id hex; envelope producer id = the trace id's first 8 bytes, sequence = the number of late events merged
     into this emission, 0 for the first; header ``sysweave.label`` = its trace label),
  3. every interval reports what it saw of each host to TOPIC_SAMPLING (``topics.HostCounts``, key = host);
     the worker owning a host's partition there sums all workers' reports (``sampling.SamplingAuthority``)
     and alone publishes that host's decision to TOPIC_CONTROL (``topics.ControlDecision``).
"""

from __future__ import annotations

import gc
import logging
import os
import queue
import threading
import time
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from sysweave.schemas import codec, topics
from sysweave.schemas.events import Event, SyscallAggregate, UnifiedTrace
from sysweave.schemas.topics import ControlDecision, HostCounts, Sighting
from sysweave.streams.buffer import TraceBuffer, finish
from sysweave.streams.join import EndpointTable, SightingScanner, host_infos, plan_tree, ripe_windows
from sysweave.streams.pipeline.assembly import trace_events
from sysweave.streams.pipeline.wire import encode_finished
from sysweave.streams.sampling import ControllerConfig, SamplingAuthority, merged_histogram

__all__ = ["AckLedger", "EndpointReader", "encode_events", "encode_trace", "make_app", "trace_headers"]

log = logging.getLogger("sysweave.streams")


def encode_trace(trace: UnifiedTrace) -> bytes:
    """A finished trace as one codec batch: every event with its corrected times, stamps and edges."""
    return codec.encode_batch(codec.Batch(int.from_bytes(trace.trace_id[:8], "big"), trace.late_events,
                                          time.time_ns(), tuple(trace_events(trace))))


def trace_headers(trace: UnifiedTrace) -> list[tuple[str, bytes]]:
    """Kafka headers of an emitted trace: ``sysweave.label`` when it has a label (``schemas.topics``)."""
    return [(topics.HEADER_LABEL, trace.label.encode())] if trace.label else []


def make_app(bootstrap: str, grace_s: float = 2.0, inactivity_s: float = 30.0, target_spans_per_s: float = 10_000.0,
             control_interval_s: float = 5.0, app_id: str = "sysweave-streams", join_wait_s: float = 10.0,
             max_held_events: int = 2_000_000) -> Any:
    import faust

    # every event the worker holds is a few GC-tracked objects that live until its trace is emitted: move what
    # start-up made out of the collector's way and collect less often (CPU per 100k spans: docs/benchmarks.md)
    gc.freeze()
    gc.set_threshold(50_000, 50, 100)
    app = faust.App(app_id, broker=f"kafka://{bootstrap}", store="memory://", topic_partitions=4,
                    broker_max_poll_records=500, producer_max_request_size=16 << 20, web_enabled=False,
                    consumer_auto_offset_reset="earliest")

    def raw(name: str) -> Any:
        return app.topic(name, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw")

    events, traces, dead, control = (raw(t) for t in (topics.TOPIC_EVENTS, topics.TOPIC_TRACES,
                                                      topics.TOPIC_DEAD_LETTER, topics.TOPIC_CONTROL))
    endpoints, sampling_topic = raw(topics.TOPIC_ENDPOINTS), raw(topics.TOPIC_SAMPLING)
    buffer = TraceBuffer(grace_s=grace_s, inactivity_s=inactivity_s, max_events=max_held_events)
    table, scanner, inbox = EndpointTable(), SightingScanner(), EndpointReader(bootstrap)
    shipped: dict[str, int] = defaultdict(int)
    hists: dict[str, list[SyscallAggregate]] = defaultdict(list)
    authority = SamplingAuthority(ControllerConfig(target_spans_per_s=target_spans_per_s))
    worker_id = f"{app_id}/{os.getpid()}"
    stats = {"batches": 0, "dead_lettered": 0, "traces_emitted": 0, "parts_forwarded": 0, "decisions": 0}
    app.sysweave_stats = stats  # type: ignore[attr-defined]
    acks = AckLedger()

    async def publish(sightings: Iterable[Sighting]) -> None:
        for s in sightings:
            table.add(s)
            await endpoints.send(key=s.message_key(), value=s.encode())

    @app.agent(events)
    async def ingest(stream: Any) -> None:
        # noack: a message is acknowledged only once the trace it belongs to has been emitted (AckLedger)
        async for event in stream.noack().events():
            msg = event.message
            try:
                batch = codec.decode_batch(event.value)
            except codec.DecodeError as exc:
                stats["dead_lettered"] += 1
                log.warning("dead-lettering %s/%s@%s: %s", msg.topic, msg.partition, msg.offset, exc)
                await dead.send(key=event.key, value=event.value,
                                headers=topics.dead_letter_headers(str(exc), msg.topic, msg.partition, msg.offset))
                poison = f"dead-letter/{msg.partition}/{msg.offset}".encode()  # never a trace key
                acks.track(poison, msg.partition, msg.offset, event)
                acks.done(poison)
                continue
            stats["batches"] += 1
            key = event.key or b""
            hdrs = msg.headers or ()
            joined = any(k == topics.HEADER_JOINED for k, _ in (hdrs.items() if isinstance(hdrs, dict) else hdrs))
            acks.track(key, msg.partition, msg.offset, event)
            buffer.add(key, batch.events, time.monotonic(), settled=joined)
            if joined:
                continue  # already counted (sampling) and scanned (join) where it first arrived
            seen = scanner.scan(key, batch.events)
            await publish(seen)
            if key in buffer.open:
                buffer.open[key].accepts += sum(1 for x in seen if x.role == "server")
            for e in batch.events:
                shipped[e.h.host_id] += 1
                if isinstance(e, SyscallAggregate):
                    hists[e.h.host_id].append(e)

    @app.timer(0.5)
    async def emit_closed() -> None:
        for s in inbox.drain():
            table.add(s)
        now = time.monotonic()
        for t in buffer.ready(now):
            waited = now - t.held_since_s if t.held_since_s is not None else 0.0
            # a trace closed early at the event limit is not held for the join (that would keep its memory)
            plan = plan_tree(t.key, t.events.values(), table, join_wait_s if t.forced else waited, join_wait_s,
                             whole=not t.lent)
            if plan.wait:
                buffer.hold(t, now)
                continue
            t.held_since_s = None
            await publish(plan.publish)
            for key, part in plan.parts.items():
                if key != t.key:  # forwarded to the trace it joins (a late part reopens that trace as an update)
                    await forward(key, part, t.key)
                    continue
                done = finish(t, part, host_infos(part, table), defer_stamps=True)
                for warning in done.warnings:
                    log.warning("trace %s: %s", done.trace.trace_id.hex(), warning)
                await traces.send(key=done.trace.trace_id.hex().encode(), value=encode_finished(done),
                                  headers=trace_headers(done.trace))
                stats["traces_emitted"] += 1
            acks.done(t.key)
        buffer.forget_closed()
        stats["forced_closes"], stats["forgotten_closed"] = buffer.forced_closes, buffer.forgotten_closed
        table.prune(time.time_ns())

    async def forward(key: bytes, part: list[Event], source: bytes) -> None:
        stats["parts_forwarded"] += 1
        await events.send(key=key, value=encode_events(part), headers=[(topics.HEADER_JOINED, source)])

    @app.timer(max(grace_s, 2.0))
    async def lend_windows() -> None:  # long-lived servers: complete windows go to their clients while it runs
        for t in [t for t in buffer.open.values() if t.accepts >= 2 and t.held_since_s is None]:
            for key, part in ripe_windows(t.key, t.events.values(), table).items():
                await forward(key, part, t.key)
                buffer.lend(t, (e.h.event_id for e in part))

    @app.timer(control_interval_s)
    async def report_hosts() -> None:
        for host, n in list(shipped.items()):
            counts = HostCounts(host, worker_id, n, control_interval_s, tuple(merged_histogram(hists[host])))
            await sampling_topic.send(key=host.encode(), value=counts.encode())
        shipped.clear()
        hists.clear()

    @app.agent(sampling_topic)
    async def authority_reports(stream: Any) -> None:
        async for value in stream:
            try:
                c = HostCounts.decode(value)
            except topics.MessageError as exc:
                log.warning("ignoring a malformed sampling report: %s", exc)
                continue
            authority.report(c.host_id, c.shipped, c.hist_log2)

    @app.timer(control_interval_s)
    async def decide() -> None:
        for new in authority.step(control_interval_s):
            stats["decisions"] += 1
            await control.send(key=new.host_id.encode(),
                               value=ControlDecision(new.host_id, new.threshold_ns, new.fraction).encode())

    @app.task
    async def start_reader() -> None:
        inbox.start()

    return app


def encode_events(events: Iterable[Event]) -> bytes:
    """Events forwarded into another trace, as one codec batch (producer id 0: a worker, not an agent)."""
    return codec.encode_batch(codec.Batch(0, 0, time.time_ns(), tuple(events)))


class EndpointReader:
    """Every worker reads all of TOPIC_ENDPOINTS (no consumer group) in a thread; the event loop drains it."""

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap
        self.queue: queue.SimpleQueue[Sighting] = queue.SimpleQueue()
        self.stop = threading.Event()

    def start(self) -> None:
        threading.Thread(target=self._run, name="sysweave-endpoints", daemon=True).start()

    def drain(self) -> list[Sighting]:
        out = []
        while True:
            try:
                out.append(self.queue.get_nowait())
            except queue.Empty:
                return out

    def _run(self) -> None:
        from kafka import KafkaConsumer

        while not self.stop.is_set():
            try:
                consumer = KafkaConsumer(topics.TOPIC_ENDPOINTS, bootstrap_servers=self.bootstrap.split(","),
                                         group_id=None, auto_offset_reset="earliest", consumer_timeout_ms=1000)
                while not self.stop.is_set():
                    for msg in consumer:
                        try:
                            self.queue.put(Sighting.decode(msg.value))
                        except topics.MessageError as exc:
                            log.warning("ignoring a malformed endpoint sighting: %s", exc)
            except Exception as exc:  # kafka-python raises many types: retry, the join degrades to local sightings
                log.warning("endpoint table reader: %s; retrying", exc)
                self.stop.wait(2)


class AckLedger:
    """Acknowledge input messages in offset order, and only once their trace has been emitted.

    A worker killed with -9 loses its open traces; their messages must be delivered again, so their offsets
    must not be committed. Faust commits the contiguous run of acked offsets, but can commit past a single
    unacked message at the head of a partition (faust-streaming issue #606, open), which is exactly what one
    long-open trace looks like. So this ledger only ever acks the head of each partition's pending run: an
    open trace holds back commits for its partition (redelivery after a crash, deduplicated by event id),
    never loses them.
    """

    def __init__(self) -> None:
        self.pending: dict[int, dict[int, list[Any]]] = defaultdict(dict)  # partition -> offset -> [event, done]
        self.by_key: dict[bytes, list[tuple[int, int]]] = defaultdict(list)

    def track(self, key: bytes, partition: int, offset: int, event: Any) -> None:
        self.pending[partition][offset] = [event, False]
        self.by_key[key].append((partition, offset))

    def done(self, key: bytes) -> None:
        touched = set()
        for partition, offset in self.by_key.pop(key, []):
            entry = self.pending[partition].get(offset)
            if entry is not None:
                entry[1] = True
                touched.add(partition)
        for partition in touched:
            pend = self.pending[partition]
            for offset in sorted(pend):
                event, finished = pend[offset]
                if not finished:
                    break
                event.ack()
                del pend[offset]
