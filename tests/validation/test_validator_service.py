"""sysweave validator serve against the real Kafka broker and ClickHouse server."""

from __future__ import annotations

import json
import time
import uuid

import pytest
from kafka import KafkaConsumer, KafkaProducer

from sysweave.schemas import codec
from sysweave.schemas.events import CausalStamp, EventHeader, ProcessEvent, ProcessEventType, SyscallSpan, make_event_id
from sysweave.streams.core.assembly import assemble
from sysweave.streams.worker import encode_trace
from sysweave.validator.service import ValidatorService

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse]


def _trace(producer: int, out: bytes):
    n = iter(range(1, 100))

    def h(t: int) -> EventHeader:
        return EventHeader(make_event_id(producer, next(n)), "h", 10, 10, t, 1_795_000_000_000_000_000 + t, 100, CausalStamp())

    evs = [ProcessEvent(h(1), ProcessEventType.EXEC, filename="/bin/x", argv=("x",)),
           SyscallSpan(h(2), 1, "write", len(out), {"fd": 1}, out, len(out)),
           ProcessEvent(h(3), ProcessEventType.EXIT, exit_code=0)]
    t = assemble(evs, producer.to_bytes(16, "big"))
    t.closed = True
    return t


def test_traces_land_once_bad_messages_dead_letter_and_validations_run(kafka_bootstrap: str, clickhouse_hostport) -> None:
    tag = uuid.uuid4().hex[:8]
    t_topic, v_topic, d_topic = f"traces-{tag}", f"validation-{tag}", f"dead-{tag}"
    url = f"clickhouse://{clickhouse_hostport[0]}:{clickhouse_hostport[1]}/svc_{tag}"
    prod = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    a, b = _trace(1, b"ping\n"), _trace(2, b"pong\n")
    for t in (a, b):
        prod.send(t_topic, key=t.trace_id.hex().encode(), value=encode_trace(t)).get(30)
    prod.send(t_topic, key=b"not-a-trace", value=b"\x93garbage").get(30)
    prod.send(v_topic, value=json.dumps({"original_trace_id": a.trace_id.hex(),
                                         "transpiled_trace_id": b.trace_id.hex()}).encode()).get(30)
    prod.send(v_topic, value=b"{not json").get(30)

    def serve_until_idle(group: str) -> ValidatorService:
        svc = ValidatorService(kafka_bootstrap, url, group=group, traces_topic=t_topic, validation_topic=v_topic,
                               dead_letter_topic=d_topic)
        svc.sink.migrate()
        end, idle = time.monotonic() + 60, 0
        while time.monotonic() < end and idle < 3:
            idle = 0 if svc.run_once(1000) else idle + 1
        return svc

    svc = serve_until_idle(f"g1-{tag}")
    assert svc.stats["traces"] == 2 and svc.stats["validations"] == 1 and svc.stats["dead_lettered"] == 2
    rows = svc.sink.execute("SELECT verdict, explanation FROM validation_results FINAL")
    assert rows == [("divergent", "byte 1 of stdout differs: 'ing\\n' vs 'ong\\n'")]
    spans_before = svc.sink.execute("SELECT count() FROM syscall_spans FINAL")[0][0]
    svc.close()

    again = serve_until_idle(f"g2-{tag}")  # a second consumer group: every message is delivered again
    assert again.sink.execute("SELECT count() FROM syscall_spans FINAL")[0][0] == spans_before == 2
    assert again.sink.execute("SELECT count() FROM traces FINAL")[0][0] == 2
    again.sink.execute(f"DROP DATABASE svc_{tag}")
    again.close()

    dlq = KafkaConsumer(d_topic, bootstrap_servers=kafka_bootstrap, auto_offset_reset="earliest", consumer_timeout_ms=10_000)
    reasons = [dict(m.headers)["sysweave.reason"].decode() for m in dlq]
    dlq.close()
    assert any(r.startswith("batch") for r in reasons) and any("bad validation request" in r for r in reasons)
    assert codec.SCHEMA_VERSION == 1
