"""Failures through the real broker: a stream worker killed with -9, and a broker outage under a running
agent and worker. Every event must end up in exactly one assembled trace; counters prove none was lost."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from kafka import KafkaConsumer, KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic

from sysweave.schemas import codec, topics
from sysweave.schemas.events import (
    CausalEdge,
    CausalStamp,
    ClockEstimate,
    EventHeader,
    ProcessEvent,
    ProcessEventType,
    SyscallSpan,
    make_event_id,
)
from sysweave.streams.buffer import trace_id_for

from .helpers import create_topics, stop

pytestmark = [pytest.mark.kafka, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]
SYSWEAVE = [sys.executable, "-m", "sysweave.cli.main"]
OUTAGE_S = float(os.environ.get("SYSWEAVE_OUTAGE_S", "60"))


def worker(bootstrap: str, suffix: str, app_id: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([*SYSWEAVE, "streams", "worker", "--kafka", bootstrap, "--grace-s", "1", "--app-id", app_id],
                            env={**os.environ, "SYSWEAVE_TOPIC_SUFFIX": suffix},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def events_for(trace_no: int, first: int, last: int, exit_at_end: bool) -> list:
    out: list = []
    for i in range(first, last):
        h = EventHeader(make_event_id(trace_no, i), "h", 100 + trace_no, 100 + trace_no, i, i, 10, CausalStamp(i, 0))
        out.append(ProcessEvent(h, ProcessEventType.EXEC, argv=("job",)) if i == 0 else
                   SyscallSpan(h, 0, "read", 1, {"fd": 0}))
    if exit_at_end:
        h = EventHeader(make_event_id(trace_no, 10**6), "h", 100 + trace_no, 100 + trace_no, last, last, 0, CausalStamp(last, 0))
        out.append(ProcessEvent(h, ProcessEventType.EXIT, exit_code=0))
    return out


def send(prod: KafkaProducer, topic: str, key: bytes, events: list, per_batch: int = 100) -> None:
    for i in range(0, len(events), per_batch):
        prod.send(topic, key=key, value=codec.encode_batch(codec.Batch(1, i, 0, tuple(events[i:i + per_batch]))))
    prod.flush()


def wait_trace(bootstrap: str, topic: str, key: bytes, want_events: int, timeout: float = 120) -> set[bytes]:
    """Event ids of the latest emission of a trace, once it holds ``want_events`` events."""
    consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", consumer_timeout_ms=1000)
    tid = trace_id_for(key).hex().encode()
    ids: set[bytes] = set()
    end = time.monotonic() + timeout
    try:
        while time.monotonic() < end and len(ids) < want_events:
            for m in consumer:
                if m.key == tid:
                    # what the producers sent, not what assembly derived (edges, clock estimates)
                    ids = {e.h.event_id for e in codec.decode_batch(m.value).events
                           if not isinstance(e, (CausalEdge, ClockEstimate))}
    finally:
        consumer.close()
    return ids


def test_worker_killed_with_sigkill_loses_nothing(kafka_bootstrap: str) -> None:
    suffix = "-" + uuid.uuid4().hex[:6]
    app_id = f"reliab-{suffix}"
    KafkaAdminClient(bootstrap_servers=kafka_bootstrap).create_topics(
        [NewTopic(topics.TOPIC_EVENTS + suffix, 1, 1), NewTopic(topics.TOPIC_TRACES + suffix, 1, 1)])
    prod = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    ev_topic, tr_topic = topics.TOPIC_EVENTS + suffix, topics.TOPIC_TRACES + suffix
    send(prod, ev_topic, b"t1", events_for(1, 0, 500, exit_at_end=False))  # open: no exit yet
    send(prod, ev_topic, b"t2", events_for(2, 0, 300, exit_at_end=True))
    w1 = worker(kafka_bootstrap, suffix, app_id)
    try:
        assert len(wait_trace(kafka_bootstrap, tr_topic, b"t2", 301)) == 301
        time.sleep(3)  # let the worker commit what it may (t2's messages, never t1's)
    finally:
        w1.send_signal(signal.SIGKILL)
        w1.wait(30)
    send(prod, ev_topic, b"t1", events_for(1, 500, 800, exit_at_end=True))
    w2 = worker(kafka_bootstrap, suffix, app_id)
    try:
        ids = wait_trace(kafka_bootstrap, tr_topic, b"t1", 801)
    finally:
        stop(w2)
    assert len(ids) == 801  # the first half, consumed by the killed worker, was delivered again


def test_broker_outage_under_agent_and_worker(kafka_bootstrap: str, tmp_path) -> None:
    label = f"outage-{uuid.uuid4().hex[:8]}"
    suffix = "-" + label  # topics of our own: no other run's backlog or consumer group in the way
    create_topics(kafka_bootstrap, suffix)
    w = worker(kafka_bootstrap, suffix, f"streams{suffix}")
    try:
        _outage_run(kafka_bootstrap, tmp_path, label, suffix)
    finally:
        stop(w)  # also when an assertion fails: a leaked worker would keep consuming after the test


def _outage_run(kafka_bootstrap: str, tmp_path: Path, label: str, suffix: str) -> None:
    # the job outlives the outage by 45 s, so the spool replays while it still runs; the shutdown timeout
    # covers what is left
    agent = subprocess.Popen([*SYSWEAVE, "agent", "--kafka", kafka_bootstrap, "--metrics-port", "0", "--trace-label", label,
                              "--spool", str(tmp_path / "spool"), "--shutdown-timeout", "30", "--", "sh", "-c",
                              f"i=0; while [ $i -lt {int(OUTAGE_S) + 45} ]; do echo $i > {tmp_path}/tick; "
                              "i=$((i+1)); sleep 1; done"],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             env={**os.environ, "SYSWEAVE_TOPIC_SUFFIX": suffix})
    try:
        time.sleep(8)
        subprocess.run(["bash", str(ROOT / "infra/services.sh"), "kafka-down"], check=True)
        time.sleep(OUTAGE_S)
        subprocess.run(["bash", str(ROOT / "infra/services.sh"), "kafka-up"], check=True)
        out, _ = agent.communicate(timeout=OUTAGE_S + 120)
    finally:
        subprocess.run(["bash", str(ROOT / "infra/services.sh"), "kafka-up"], capture_output=True)
        if agent.poll() is None:
            agent.kill()
    text = out.decode()
    m = re.search(r"shipped (\d+) events in (\d+) batches; (\d+) batches spooled \((\d+) waiting\); lost: (\{.*\})", text)
    assert m, text[-3000:]
    shipped, spooled, waiting, lost = int(m.group(1)), int(m.group(3)), int(m.group(4)), eval(m.group(5))
    assert spooled > 0 and waiting == 0 and not any(lost.values()), text[-2000:]
    ids = wait_trace(kafka_bootstrap, topics.TOPIC_TRACES + suffix, label.encode(), shipped, timeout=180)
    assert len(ids) == shipped  # every shipped event is in the one assembled trace, once
