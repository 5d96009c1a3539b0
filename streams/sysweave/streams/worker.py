"""Faust workers: thin glue around the pure stream core (buffer, assembly, causality, clock sync, sampling).

    sysweave streams worker --kafka BOOTSTRAP

Several workers share TOPIC_EVENTS's partitions through Kafka's consumer group. Each:
  1. decodes agent batches (a bad message goes to TOPIC_DEAD_LETTER with the reason; the worker goes on),
  2. buffers them per trace key and, when a trace closes (or a late event updates it), runs the one pipeline
     (``buffer.finish`` -> ``pipeline.build_trace``) and emits the finished trace to TOPIC_TRACES as a codec
     batch (key = trace id hex; envelope producer id = the trace id's first 8 bytes, sequence = the number of
     late events merged into this emission, 0 for the first; header ``sysweave.label`` = its trace label),
  3. runs the adaptive sampling controller per host every interval and publishes its decisions to
     TOPIC_CONTROL (JSON {"host_id", "threshold_ns", "fraction"}), which agents apply to the BPF map.
"""

from __future__ import annotations

import json
import logging
import time
from collections import defaultdict
from typing import Any

from sysweave.schemas import codec, topics
from sysweave.schemas.events import SyscallAggregate, UnifiedTrace
from sysweave.streams.buffer import TraceBuffer, finish
from sysweave.streams.pipeline.assembly import trace_events
from sysweave.streams.sampling import ControllerConfig, HostSampling, control_step, merged_histogram

log = logging.getLogger("sysweave.streams")


def encode_trace(trace: UnifiedTrace) -> bytes:
    """A finished trace as one codec batch: every event with its corrected times, stamps and edges."""
    return codec.encode_batch(codec.Batch(int.from_bytes(trace.trace_id[:8], "big"), trace.late_events,
                                          time.time_ns(), tuple(trace_events(trace))))


def trace_headers(trace: UnifiedTrace) -> list[tuple[str, bytes]]:
    """Kafka headers of an emitted trace: ``sysweave.label`` when it has a label (``schemas.topics``)."""
    return [(topics.HEADER_LABEL, trace.label.encode())] if trace.label else []


def make_app(bootstrap: str, grace_s: float = 2.0, inactivity_s: float = 30.0, target_spans_per_s: float = 10_000.0,
             control_interval_s: float = 5.0, app_id: str = "sysweave-streams") -> Any:
    import faust

    app = faust.App(app_id, broker=f"kafka://{bootstrap}", store="memory://", topic_partitions=4,
                    broker_max_poll_records=500, producer_max_request_size=16 << 20, web_enabled=False,
                    consumer_auto_offset_reset="earliest")
    events = app.topic(topics.TOPIC_EVENTS, key_type=bytes, value_type=bytes, key_serializer="raw",
                       value_serializer="raw")
    traces = app.topic(topics.TOPIC_TRACES, key_type=bytes, value_type=bytes, key_serializer="raw",
                       value_serializer="raw")
    dead = app.topic(topics.TOPIC_DEAD_LETTER, key_type=bytes, value_type=bytes, key_serializer="raw",
                     value_serializer="raw")
    control = app.topic(topics.TOPIC_CONTROL, key_type=bytes, value_type=bytes, key_serializer="raw",
                        value_serializer="raw")
    buffer = TraceBuffer(grace_s=grace_s, inactivity_s=inactivity_s)
    shipped: dict[str, int] = defaultdict(int)
    hists: dict[str, list[SyscallAggregate]] = defaultdict(list)
    sampling: dict[str, HostSampling] = {}
    cfg = ControllerConfig(target_spans_per_s=target_spans_per_s)
    stats = {"batches": 0, "dead_lettered": 0, "traces_emitted": 0}
    app.sysweave_stats = stats  # type: ignore[attr-defined]

    acks = AckLedger()

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
            acks.track(key, msg.partition, msg.offset, event)
            buffer.add(key, batch.events, time.monotonic())
            for e in batch.events:
                shipped[e.h.host_id] += 1
                if isinstance(e, SyscallAggregate):
                    hists[e.h.host_id].append(e)

    @app.timer(0.5)
    async def emit_closed() -> None:
        for t in buffer.ready(time.monotonic()):
            done = finish(t)
            for warning in done.warnings:
                log.warning("trace %s: %s", done.trace.trace_id.hex(), warning)
            await traces.send(key=done.trace.trace_id.hex().encode(), value=encode_trace(done.trace),
                              headers=trace_headers(done.trace))
            stats["traces_emitted"] += 1
            acks.done(t.key)
        buffer.forget_closed()

    @app.timer(control_interval_s)
    async def control_sampling() -> None:
        for host, n in list(shipped.items()):
            state = sampling.get(host, HostSampling(host))
            new = control_step(state, n, control_interval_s, merged_histogram(hists[host]), cfg)
            sampling[host] = new
            if new.threshold_ns != state.threshold_ns:
                await control.send(key=host.encode(), value=json.dumps(
                    {"host_id": host, "threshold_ns": new.threshold_ns, "fraction": new.fraction}).encode())
        shipped.clear()
        hists.clear()

    return app


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
