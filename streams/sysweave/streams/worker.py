"""Faust workers: thin glue around the pure stream core — topics and timers wired to one
``processor.StreamProcessor``, which holds the state (buffer, join, pipeline, sampling) and has its own tests.

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
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

from sysweave.schemas import codec, topics
from sysweave.schemas.events import UnifiedTrace
from sysweave.schemas.topics import Sighting, TraceMessage
from sysweave.streams.pipeline.assembly import trace_events
from sysweave.streams.processor import Effects, Incoming, Outbound, StreamProcessor, WorkerConfig

__all__ = ["EndpointReader", "encode_trace", "make_app", "trace_headers"]

log = logging.getLogger("sysweave.streams")


def encode_trace(trace: UnifiedTrace) -> bytes:
    """A finished trace as one codec batch: every event with its corrected times, stamps and edges."""
    return TraceMessage(trace.trace_id, trace.label, codec.Batch(int.from_bytes(trace.trace_id[:8], "big"),
                        trace.late_events, time.time_ns(), tuple(trace_events(trace)))).encode()


def trace_headers(trace: UnifiedTrace) -> list[tuple[str, bytes]]:
    """Kafka headers of an emitted trace: ``sysweave.label`` when it has a label (``schemas.topics``)."""
    return TraceMessage.headers_for(trace.label)


def _faust_app(bootstrap: str, app_id: str) -> Any:
    import faust

    # every event the worker holds is a few GC-tracked objects that live until its trace is emitted: move what
    # start-up made out of the collector's way and collect less often (CPU per 100k spans: docs/benchmarks.md)
    gc.freeze()
    gc.set_threshold(50_000, 50, 100)
    return faust.App(app_id, broker=f"kafka://{bootstrap}", store="memory://", topic_partitions=4,
                     broker_max_poll_records=500, producer_max_request_size=16 << 20, web_enabled=False,
                     consumer_auto_offset_reset="earliest",
                     # an open trace's messages stay unacknowledged until it is emitted: waiting for every message
                     # to be acknowledged before a rebalance or a stop waited for traces whose partitions were
                     # paused (measured: minutes of CPU in wait_empty). Revoked partitions' traces are dropped
                     # instead (StreamProcessor.revoke) and read again, from the committed offset, by the new owner
                     stream_wait_empty=False,
                     # Faust writes a data directory even for memory tables: not in whatever the cwd is (a checkout)
                     datadir=tempfile.mkdtemp(prefix=f"sysweave-faust-{app_id}-"))


_Apply = Callable[[Effects | list[Outbound]], Awaitable[None]]  # sends a processor step's messages, then acks


def make_app(bootstrap: str, cfg: WorkerConfig | None = None, app_id: str = "sysweave-streams",
             processor: StreamProcessor | None = None) -> Any:
    """A Faust app that wires the worker's topics and timers to one :class:`StreamProcessor`."""
    cfg = cfg or WorkerConfig(worker_id=f"{app_id}/{os.getpid()}")
    proc = processor or StreamProcessor(cfg)
    app = _faust_app(bootstrap, app_id)
    out = {name: app.topic(name, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw")
           for name in topics.ALL_TOPICS}
    inbox = EndpointReader(bootstrap)

    async def apply(fx: Effects | list[Outbound]) -> None:
        sends, acks = (fx.sends, fx.acks) if isinstance(fx, Effects) else (fx, [])
        for m in sends:
            await out[m.topic].send(key=m.key, value=m.value, headers=list(m.headers) or None)
        for handle in acks:
            handle.ack()

    _wire_traces(app, out[topics.TOPIC_EVENTS], proc, cfg, inbox, apply)
    _wire_sampling(app, out[topics.TOPIC_SAMPLING], proc, cfg, apply)

    @app.task
    async def start_reader() -> None:
        inbox.start()

    return app


def _wire_traces(app: Any, events_topic: Any, proc: StreamProcessor, cfg: WorkerConfig, inbox: EndpointReader,
                 apply: _Apply) -> None:
    """TOPIC_EVENTS in, its partitions' ownership, and the timers that emit closed traces and lend windows."""

    @app.agent(events_topic)
    async def ingest(stream: Any) -> None:  # noack: acknowledged only once the message's trace is emitted
        async for event in stream.noack().events():
            msg = event.message
            await apply(proc.ingest(Incoming(event.key, event.value, msg.headers, msg.partition, msg.offset, event,
                                             msg.topic), time.monotonic()))

    @app.on_partitions_revoked.connect
    async def on_revoked(_app: Any, revoked: Any, **_: Any) -> None:
        n = proc.revoke(tp.partition for tp in revoked if tp.topic == topics.TOPIC_EVENTS)
        log.info("worker %s: partitions revoked, %d open trace(s) left to their new owner", cfg.worker_id, n)

    @app.on_partitions_assigned.connect
    async def on_assigned(_app: Any, assigned: Any, **_: Any) -> None:
        proc.assign(tp.partition for tp in assigned if tp.topic == topics.TOPIC_EVENTS)

    @app.timer(0.5)
    async def emit_closed() -> None:
        proc.add_sightings(inbox.drain())
        await apply(proc.emit_closed(time.monotonic(), time.time_ns()))

    @app.timer(max(cfg.grace_s, 2.0))
    async def lend_windows() -> None:
        await apply(proc.lend_windows(time.time_ns()))


def _wire_sampling(app: Any, sampling_topic: Any, proc: StreamProcessor, cfg: WorkerConfig, apply: _Apply) -> None:
    """Each interval: this worker's host counts out, every worker's reports in, the owned hosts' decisions out."""

    @app.timer(cfg.control_interval_s)
    async def report_hosts() -> None:
        await apply(proc.host_reports())
        log.info("worker %s: %s", cfg.worker_id, proc.counters())

    @app.agent(sampling_topic)
    async def authority_reports(stream: Any) -> None:
        async for value in stream:
            proc.sampling_report(value)

    @app.timer(cfg.control_interval_s)
    async def decide() -> None:
        await apply(proc.decide())


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
