"""A trace label through the real broker and a real Faust worker: the agents' key becomes the trace's label,
travels as the ``sysweave.label`` header of the emitted trace, and the validator service's handler reads it
back into a trace identical to the pipeline's own."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections import deque
from typing import Any

import pytest
from kafka import KafkaConsumer, KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic

from distributed.helpers import stop  # tests/distributed (pytest puts tests/ on the path)
from sysweave.schemas import codec, topics
from sysweave.streams.buffer import trace_id_for
from sysweave.streams.pipeline import build_trace

from .recorded import recorded_events

pytestmark = [pytest.mark.kafka]
SYSWEAVE = [sys.executable, "-m", "sysweave.cli.main"]


class _Sink:
    def __init__(self) -> None:
        self.traces: list[Any] = []

    def add_trace(self, trace: Any, **_kw: Any) -> int:
        self.traces.append(trace)
        return 0


def test_label_travels_from_the_agent_key_to_the_stored_trace(kafka_bootstrap: str) -> None:
    label = f"label-{uuid.uuid4().hex[:8]}"
    suffix = "-" + label
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    admin.create_topics([NewTopic(t + suffix, 2, 1) for t in
                         (topics.TOPIC_EVENTS, topics.TOPIC_TRACES, topics.TOPIC_CONTROL, topics.TOPIC_DEAD_LETTER)])
    admin.close()
    rec = recorded_events()
    prod = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    for host, evs in rec.by_host.items():  # one batch per agent, keyed by the shared trace label
        prod.send(topics.TOPIC_EVENTS + suffix, key=label.encode(),
                  value=codec.encode_batch(codec.Batch(ord(host), 0, time.time_ns(), tuple(evs))))
    prod.flush()
    prod.close()
    worker = subprocess.Popen([*SYSWEAVE, "streams", "worker", "--kafka", kafka_bootstrap, "--grace-s", "1",
                               "--app-id", f"streams{suffix}"], env={**os.environ, "SYSWEAVE_TOPIC_SUFFIX": suffix},
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    want = trace_id_for(label.encode()).hex().encode()
    msg = None
    consumer = KafkaConsumer(topics.TOPIC_TRACES + suffix, bootstrap_servers=kafka_bootstrap,
                             auto_offset_reset="earliest", consumer_timeout_ms=1000)
    try:
        end = time.monotonic() + 120
        while msg is None and time.monotonic() < end:
            msg = next((m for m in consumer if m.key == want), None)
    finally:
        consumer.close()
        stop(worker)
    assert msg is not None, "the worker never emitted the trace"
    assert dict(msg.headers)[topics.HEADER_LABEL] == label.encode()

    from sysweave.validator.service import ValidatorService

    svc = ValidatorService.__new__(ValidatorService)  # the handler on the real message; no ClickHouse here
    sink = _Sink()
    svc.sink, svc.exporter, svc.otlp_queue, svc.max_otlp_queue, svc.stats = sink, None, deque(), 1, {"traces": 0}  # type: ignore[assignment]
    svc.handle_trace(msg)
    (stored,) = sink.traces
    assert stored.label == label
    assert stored == build_trace(rec.events, bytes.fromhex(want.decode()), label).trace
