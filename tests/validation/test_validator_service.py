"""sysweave validator serve against the real Kafka broker and ClickHouse server."""

from __future__ import annotations

import json
import time
import uuid

import pytest
from kafka import KafkaConsumer, KafkaProducer

from sysweave.schemas import codec
from sysweave.schemas.events import CausalStamp, EventHeader, ProcessEvent, ProcessEventType, SyscallSpan, make_event_id
from sysweave.streams.pipeline.assembly import assemble
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
    assert rows == [("divergent", "byte 1 of stdout differs: 'ping\\n' vs 'pong\\n'")]
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
    assert any(r.startswith("trace message: ") for r in reasons) and any("bad validation request" in r for r in reasons)
    assert codec.SCHEMA_VERSION == 1


ROOT = __import__("pathlib").Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_clickhouse_outage_is_retried_without_loss(kafka_bootstrap: str, clickhouse_hostport) -> None:
    import subprocess
    import threading

    tag = uuid.uuid4().hex[:8]
    t_topic = f"traces-{tag}"
    url = f"clickhouse://{clickhouse_hostport[0]}:{clickhouse_hostport[1]}/outage_{tag}"
    prod = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    t = _trace(7, b"survives\n")
    prod.send(t_topic, key=t.trace_id.hex().encode(), value=encode_trace(t)).get(30)
    svc = ValidatorService(kafka_bootstrap, url, group=f"g-{tag}", traces_topic=t_topic, validation_topic=f"v-{tag}",
                           dead_letter_topic=f"d-{tag}")
    svc.sink.migrate()
    services = ["bash", str(ROOT / "infra/services.sh")]
    subprocess.run([*services, "clickhouse-down"], check=True, capture_output=True)
    result: list[int] = []
    try:
        worker = threading.Thread(target=lambda: result.append(sum(svc.run_once(2000) for _ in range(5))))
        worker.start()
        time.sleep(30)  # ClickHouse is down for 30 s while the service holds the batch and backs off
    finally:
        subprocess.run([*services, "clickhouse-up"], check=True, capture_output=True)
    worker.join(120)
    assert result and result[0] >= 1 and svc.sink.retries > 0
    assert svc.sink.execute("SELECT count() FROM traces FINAL")[0][0] == 1
    svc.sink.execute(f"DROP DATABASE outage_{tag}")
    svc.close()


def test_otlp_outage_is_bounded_and_counted(kafka_bootstrap: str, clickhouse_hostport) -> None:
    tag = uuid.uuid4().hex[:8]
    url = f"clickhouse://{clickhouse_hostport[0]}:{clickhouse_hostport[1]}/otlp_{tag}"
    svc = ValidatorService(kafka_bootstrap, url, otlp="127.0.0.1:9", group=f"g-{tag}", max_otlp_queue=1,
                           traces_topic=f"t-{tag}", validation_topic=f"v-{tag}", dead_letter_topic=f"d-{tag}")
    svc.sink.migrate()

    class Msg:
        topic, partition, offset, headers = f"t-{tag}", 0, 0, []

        def __init__(self, t) -> None:
            self.key, self.value = t.trace_id.hex().encode(), encode_trace(t)

    for i in range(3):
        svc.handle_trace(Msg(_trace(20 + i, b"x")))
    svc.drain_otlp()  # the endpoint is down: nothing sent, nothing raised
    assert svc.stats["otlp_dropped"] == 2 and len(svc.otlp_queue) == 1 and svc.stats["otlp_sent"] == 0
    svc.sink.execute(f"DROP DATABASE IF EXISTS otlp_{tag}")
    svc.close()
