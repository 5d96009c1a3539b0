"""``sysweave validator serve``: finished traces and validation requests from Kafka into ClickHouse (+ OTLP).

    sysweave validator serve --kafka BOOTSTRAP --clickhouse clickhouse://HOST:9000/sysweave [--otlp HOST:4317]
    sysweave validator migrate --clickhouse URL

Delivery: offsets are committed only after the batch's rows are in ClickHouse, so a crash or a ClickHouse
outage redelivers instead of losing; redelivered rows collapse (ReplacingMergeTree keyed by event id).
While ClickHouse is down the service backs off and retries, holding at most ``max_buffered_rows``; a
malformed message goes to the dead-letter topic with the reason and the service goes on. OTLP forwarding
is best effort with its own bounded queue: drops are counted and logged.

Validation requests (TOPIC_VALIDATION): a typed ``ValidationRequest`` (JSON; ``sysweave validate
--original-trace A --transpiled-trace B --submit`` sends one) naming two stored traces by id or label. Both
are read back from ClickHouse and compared by their effects (docs/equivalence.md): files by their recorded
final states (FileState), stdout/stderr rebuilt from the captured write payloads, resources named by host.
The stored report has the speedup from the traces' wall times and each trace's backend from the traces
table.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections import deque
from typing import Any

from sysweave.schemas import codec, ddl, topics
from sysweave.schemas.topics import DeadLetter, TraceMessage, ValidationRequest
from sysweave.streams.pipeline import FINISHED, build_trace
from sysweave.validator.equivalence.stored import validate_traces
from sysweave.validator.store.base import AmbiguousTrace, TraceNotFound
from sysweave.validator.store.server import ClickHouseSink, SinkError

__all__ = ["ValidatorService", "apply_retention"]

log = logging.getLogger("sysweave.validator")


class ValidatorService:
    def __init__(self, bootstrap: str, clickhouse_url: str, otlp: str | None = None, group: str = "sysweave-validator",
                 max_otlp_queue: int = 10_000, traces_topic: str = topics.TOPIC_TRACES,
                 validation_topic: str = topics.TOPIC_VALIDATION, dead_letter_topic: str = topics.TOPIC_DEAD_LETTER) -> None:
        from kafka import KafkaConsumer, KafkaProducer

        self.traces_topic, self.dead_letter_topic = traces_topic, dead_letter_topic
        self.sink = ClickHouseSink(clickhouse_url)
        self.consumer = KafkaConsumer(traces_topic, validation_topic, bootstrap_servers=bootstrap.split(","),
                                      group_id=group, enable_auto_commit=False, auto_offset_reset="earliest",
                                      max_poll_records=200, fetch_max_bytes=64 << 20, max_partition_fetch_bytes=16 << 20)
        self.producer = KafkaProducer(bootstrap_servers=bootstrap.split(","), acks="all")
        self.exporter = None
        if otlp:
            from sysweave.validator.export.otlp import make_exporter

            self.exporter = make_exporter(otlp, "http/protobuf" if otlp.startswith("http") else "grpc")
        self.otlp_queue: deque[Any] = deque()
        # validation requests whose traces are not stored yet: retried, and their offsets not committed
        self.deferred: list[tuple[float, int, Any]] = []  # (due monotonic s, attempts, message)
        self.max_attempts = 30
        self.max_otlp_queue = max_otlp_queue
        self.stats = {"traces": 0, "validations": 0, "dead_lettered": 0, "otlp_dropped": 0, "otlp_sent": 0}
        self.stop = threading.Event()

    def dead_letter(self, msg: Any, reason: str) -> None:
        self.stats["dead_lettered"] += 1
        log.warning("dead-lettering %s/%s@%s: %s", msg.topic, msg.partition, msg.offset, reason)
        self.producer.send(self.dead_letter_topic, key=msg.key, value=msg.value,
                           headers=DeadLetter(reason, msg.topic, msg.partition, msg.offset).headers()).get(timeout=30)

    def handle_trace(self, msg: Any) -> None:
        try:
            m = TraceMessage.decode(msg.key, msg.value, msg.headers)
        except (codec.DecodeError, topics.MessageError) as exc:
            self.dead_letter(msg, str(exc))
            return
        # The worker's output already went through the one pipeline (edges, clock sync, stamps): trust it. The
        # same function with steps=FINISHED (assembly only) rebuilds exactly that trace — times are corrected
        # once, by the worker (the pipeline is idempotent, so its steps would change nothing; tested in
        # tests/pipeline/test_one_pipeline.py). The label travels in the sysweave.label header.
        trace = build_trace(m.batch.events, m.trace_id, m.label, late_events=m.late_events, steps=FINISHED).trace
        self.sink.add_trace(trace, label=trace.label)  # the backend comes from the trace's hosts
        self.stats["traces"] += 1
        if self.exporter is not None:
            if len(self.otlp_queue) >= self.max_otlp_queue:
                self.otlp_queue.popleft()
                self.stats["otlp_dropped"] += 1
            self.otlp_queue.append(trace)

    def handle_validation(self, msg: Any, attempts: int = 0) -> None:
        """A typed :class:`ValidationRequest`: both stored traces (ids or labels) compared by their effects
        (docs/equivalence.md); speedup from the traces' wall times, backend from the traces table."""
        try:
            req = ValidationRequest.decode(msg.value)
        except topics.MessageError as exc:
            self.dead_letter(msg, str(exc))
            return
        self.sink.flush()  # the traces may be in this very poll
        try:
            traces = [self.sink.load_trace(ref) for ref in (req.original_trace_id, req.transpiled_trace_id)]
            backends = []
            for trace in traces:
                rows = self.sink.execute(f"SELECT backend FROM traces WHERE trace_id = '{trace.trace_id.hex()}' "
                                         f"ORDER BY version DESC LIMIT 1")
                backends.append(str(rows[0][0]) if rows else "")
        except AmbiguousTrace as exc:  # a label naming several traces: waiting will not help
            self.dead_letter(msg, f"validation request: {exc}")
            return
        except TraceNotFound as exc:
            if attempts + 1 < self.max_attempts:  # the trace may still be on its way: try again in 2 s
                self.deferred.append((time.monotonic() + 2.0, attempts + 1, msg))
            else:
                self.dead_letter(msg, f"validation request: {exc} (after {attempts + 1} attempts)")
            return
        except ValueError as exc:
            self.dead_letter(msg, f"validation request: {exc}")
            return
        report = validate_traces(traces[0], traces[1], (backends[0], backends[1]))
        report["request_id"] = req.request_id
        a, b = report["original_trace_id"], report["transpiled_trace_id"]
        self.sink.add_rows("validation_results", [{
            "validation_id": req.request_id or uuid.uuid4().hex, "created_wall_ns": time.time_ns(),
            "original_cmd": req.original_label or req.original_trace_id,
            "transpiled_cmd": req.transpiled_label or req.transpiled_trace_id,
            "original_trace_id": a, "transpiled_trace_id": b, "verdict": report["verdict"],
            "confidence": report["confidence"], "explanation": report["explanation"],
            "speedup": report["performance"]["speedup"] or 0.0, "report": json.dumps(report), "version": time.time_ns()}])
        self.stats["validations"] += 1

    def drain_otlp(self) -> None:
        from sysweave.validator.export.otlp import ExportError, export

        while self.otlp_queue and self.exporter is not None:
            try:
                self.stats["otlp_sent"] += export(self.otlp_queue[0], self.exporter)
                self.otlp_queue.popleft()
            except ExportError as exc:
                log.warning("OTLP endpoint unavailable (%s); %d traces queued", exc, len(self.otlp_queue))
                return

    def run_once(self, timeout_ms: int = 1000) -> int:
        polled = self.consumer.poll(timeout_ms=timeout_ms)
        n = 0
        for _tp, msgs in polled.items():
            for msg in msgs:
                n += 1
                if msg.topic == self.traces_topic:
                    self.handle_trace(msg)
                else:
                    self.handle_validation(msg)
        now = time.monotonic()
        due = [d for d in self.deferred if d[0] <= now]
        self.deferred = [d for d in self.deferred if d[0] > now]
        if due:
            self.sink.flush()
        for _due, attempts, msg in due:
            n += 1
            self.handle_validation(msg, attempts)
        if n:
            self.sink.flush()  # retries with backoff; raises SinkUnavailable after the deadline (no commit)
            self._commit()
        self.drain_otlp()
        return n

    def _commit(self) -> None:
        """Commit consumed positions, but never past a deferred validation request."""
        from kafka import OffsetAndMetadata, TopicPartition

        held: dict[Any, int] = {}
        for _due, _attempts, msg in self.deferred:
            tp = TopicPartition(msg.topic, msg.partition)
            held[tp] = min(held.get(tp, msg.offset), msg.offset)
        offsets = {tp: OffsetAndMetadata(held.get(tp, self.consumer.position(tp)), "", -1)
                   for tp in self.consumer.assignment()}
        self.consumer.commit(offsets)

    def serve(self) -> None:
        while not self.stop.is_set():
            try:
                self.run_once()
            except SinkError as exc:
                log.error("ClickHouse unavailable: %s; the batch will be redelivered", exc)
                self._rewind()

    def _rewind(self) -> None:
        """Seek back to the committed offsets so the unsaved batch is read again."""
        for tp in self.consumer.assignment():
            committed = self.consumer.committed(tp)
            if committed is not None:
                self.consumer.seek(tp, committed)
            else:
                self.consumer.seek_to_beginning(tp)
        self.sink.discard_buffered()

    def close(self) -> None:
        self.stop.set()
        self.consumer.close()
        self.producer.close(timeout=5)
        self.sink.close()


def apply_retention(sink: ClickHouseSink, days: int) -> None:
    version = str(sink.execute("SELECT version()")[0][0])
    if ddl.supports_ttl(version):
        for stmt in ddl.ttl_statements(days):
            sink.execute(stmt)
        print(f"retention: rows older than {days} days expire (table TTL, ClickHouse {version})")
        return
    parts = sink.execute(f"SELECT DISTINCT table, partition FROM system.parts WHERE database = '{sink.database}' AND active")
    stmts = ddl.prune_statements([(str(t), str(p).strip("'")) for t, p in parts], days)
    for stmt in stmts:
        sink.execute(stmt)
    print(f"retention: ClickHouse {version} has no TTL; dropped {len(stmts)} monthly partitions older than {days} days")
