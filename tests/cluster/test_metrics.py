"""The agent's Prometheus endpoint, scraped: every counter moves when it should and stays put when it should not.

Healthy run (Kafka up): calls counted, events captured, sampled away and shipped all rise with a workload's
burst; nothing is spooled or lost. A sampling decision on the control topic moves the kernel-threshold gauge
(read back from the BPF map). Kafka unreachable with a zero-size spool: batches are spooled, the spool gauge
rises, nothing is shipped, and the oldest batches are dropped and counted as lost (spool_overflow). The other
loss sources (ringbuf, queue, aggregate_table_full, undecodable, publish_queue) need an overloaded host to move;
here they are asserted to stay at zero."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from sysweave.schemas.topics import ControlDecision

from .agent_helpers import SYSWEAVE, free_port, make_topics, new_suffix, wait_metrics
from .test_agent_modes import N, Workload, stop_agent

pytestmark = [pytest.mark.bpf, pytest.mark.kafka]
HOST = "metrics-test"


def scrape(port: int) -> dict[str, float]:
    import urllib.request

    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        text = r.read().decode()
    out: dict[str, float] = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            if s.name.startswith("sysweave_agent_") and not s.name.endswith("_created"):
                key = s.name.removesuffix("_total") + (f"{{{s.labels['source']}}}" if "source" in s.labels else "")
                out[key] = s.value
    return out


def wait_for(port: int, cond: Callable[[dict[str, float]], bool], timeout_s: float = 30.0) -> dict[str, float]:
    end = time.monotonic() + timeout_s
    m = scrape(port)
    while not cond(m) and time.monotonic() < end:
        time.sleep(0.5)
        m = scrape(port)
    return m


def agent(bootstrap: str, suffix: str, tmp: Path, pid: int, *extra: str):  # type: ignore[no-untyped-def]
    import subprocess

    port = free_port()
    proc = subprocess.Popen([*SYSWEAVE, "agent", "--kafka", bootstrap, "--host-id", HOST, "--window-s", "1",
                             "--metrics-port", str(port), "--spool", str(tmp / "spool"), *extra, "--pid", str(pid)],
                            env={**os.environ, "SYSWEAVE_TOPIC_SUFFIX": suffix}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    wait_metrics(port, proc)
    time.sleep(1.0)
    return proc, port


def test_counters_move_with_load_and_control(bpf_ready: None, kafka_bootstrap: str, tmp_path: Path) -> None:
    from kafka import KafkaProducer

    from sysweave.schemas import topics

    suffix = new_suffix()
    make_topics(kafka_bootstrap, suffix)
    w = Workload(tmp_path, "w")
    proc, port = agent(kafka_bootstrap, suffix, tmp_path, w.pid)
    try:
        before = scrape(port)
        lost_sources = [k for k in before if k.startswith("sysweave_agent_events_lost{")]
        assert {"sysweave_agent_events_lost{ringbuf}", "sysweave_agent_events_lost{spool_overflow}"} <= set(lost_sources)
        w.burst()
        after = wait_for(port, lambda m: m["sysweave_agent_events_shipped"] > before["sysweave_agent_events_shipped"]
                         and m["sysweave_agent_calls_counted"] - before["sysweave_agent_calls_counted"] >= N)
        delta = {k: after[k] - before[k] for k in before}
        assert delta["sysweave_agent_calls_counted"] >= N  # exact in-kernel counts include every stat()
        assert delta["sysweave_agent_events_sampled_away"] > 0, (before, after)  # fast stat() calls are counted, not shipped
        assert delta["sysweave_agent_events_captured"] > 0  # the workload's 20 ms sleeps are slow calls
        assert delta["sysweave_agent_events_shipped"] > 0
        # (batches made while the producer first connects go through the spool; none while Kafka is up)
        assert delta["sysweave_agent_batches_spooled"] == 0 and after["sysweave_agent_spool_bytes"] == 0
        assert all(after[k] == 0 for k in lost_sources), {k: after[k] for k in lost_sources}
        assert after["sysweave_agent_slow_threshold_ns"] == 10_000  # --slow-us default

        # a sampling decision for this host reaches the kernel map
        producer = KafkaProducer(bootstrap_servers=kafka_bootstrap)
        decision = ControlDecision(HOST, 777_777, 0.5).encode()
        end = time.monotonic() + 40
        while scrape(port)["sysweave_agent_slow_threshold_ns"] != 777_777 and time.monotonic() < end:
            producer.send(topics.TOPIC_CONTROL + suffix, key=HOST.encode(), value=decision).get(10)
            time.sleep(1.0)
        producer.close()
        assert scrape(port)["sysweave_agent_slow_threshold_ns"] == 777_777
    finally:
        w.finish()
        stop_agent(proc)


def test_spool_counters_move_when_kafka_is_unreachable(bpf_ready: None, tmp_path: Path) -> None:
    w = Workload(tmp_path, "w")
    proc, port = agent(f"127.0.0.1:{free_port()}", new_suffix(), tmp_path, w.pid, "--spool-max-mb", "0")
    try:
        for _ in range(3):
            w.burst()
            time.sleep(1.2)  # one aggregate window each: several batches
        m = wait_for(port, lambda m: m["sysweave_agent_events_lost{spool_overflow}"] > 0)
        assert m["sysweave_agent_batches_spooled"] >= 2
        assert m["sysweave_agent_spool_bytes"] > 0
        assert m["sysweave_agent_events_shipped"] == 0
        assert m["sysweave_agent_events_lost{spool_overflow}"] > 0  # a zero-size spool keeps only the newest batch
    finally:
        w.finish()
        stop_agent(proc)
