"""Three "hosts" (network namespaces joined by veth pairs), one agent each with its own host id and an
injected clock offset, the real Kafka broker and a real Faust worker: one assembled trace with every
process, TCP causal edges across hosts, and clock offsets recovered within their stated bounds."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from kafka import KafkaConsumer

from sysweave.schemas import codec, topics
from sysweave.streams.buffer import trace_id_for
from sysweave.streams.pipeline.assembly import assemble

from .helpers import assert_cross_host_job, create_topics, network_testbed, stop

pytestmark = [pytest.mark.bpf, pytest.mark.kafka, pytest.mark.usefixtures("bpf_ready")]

JOB = Path(__file__).resolve().parents[1] / "fixtures" / "distributed_job.py"
SYSWEAVE = [sys.executable, "-m", "sysweave.cli.main"]
OFFSETS = {"A": 0, "B": 5_000_000, "C": -3_000_000}  # ns, injected per agent (--clock-offset-ns)
LINKS = {"B": ("10.77.1.1", "10.77.1.2"), "C": ("10.77.2.1", "10.77.2.2")}


@pytest.fixture(scope="module")
def testbed() -> Iterator[dict[str, str]]:
    yield from network_testbed("sw", LINKS)


def agent(host: str, netns: str, label: str, env: dict[str, str], *cmd: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([*SYSWEAVE, "agent", "--kafka", os.environ.get("SYSWEAVE_TEST_KAFKA", "127.0.0.1:9092"),
                             "--host-id", host, "--trace-label", label, "--metrics-port", "0", "--observable",
                             "--clock-offset-ns", str(OFFSETS[host]), "--netns", netns, "--spool",
                             f"/tmp/sysweave-test-spool-{label}-{host}", "--", *cmd],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)


def test_distributed_job_assembles_with_edges_and_clock_offsets(testbed, kafka_bootstrap: str, tmp_path) -> None:
    label = f"job-{uuid.uuid4().hex[:8]}"
    suffix = "-" + label  # topics of our own: no other run's backlog or consumer group in the way
    env = {**os.environ, "SYSWEAVE_TOPIC_SUFFIX": suffix}
    create_topics(kafka_bootstrap, suffix)
    worker = subprocess.Popen([*SYSWEAVE, "streams", "worker", "--kafka", kafka_bootstrap, "--grace-s", "3",
                               "--app-id", f"streams{suffix}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    procs = []
    try:
        for host in "BC":
            procs.append(agent(host, testbed[host], label, env, sys.executable, str(JOB), "worker", "7000",
                               str(tmp_path / host)))
        time.sleep(8)  # agents compile their BPF programs and start the workers
        peers = [f"{LINKS[h][1]}:7000" for h in "BC"]
        procs.append(agent("A", testbed["A"], label, env, sys.executable, str(JOB), "coordinator", "20", *peers))
        for p in procs:
            out, _ = p.communicate(timeout=120)
            assert p.returncode == 0, out.decode()[-2000:]
        assert len(list((tmp_path / "B").iterdir())) == 20 and len(list((tmp_path / "C").iterdir())) == 20

        want = trace_id_for(label.encode()).hex().encode()
        consumer = KafkaConsumer(topics.TOPIC_TRACES + suffix, bootstrap_servers=kafka_bootstrap, auto_offset_reset="earliest",
                                 consumer_timeout_ms=2000)
        trace = None
        end = time.monotonic() + 120
        while trace is None and time.monotonic() < end:
            for msg in consumer:
                if msg.key == want:
                    batch = codec.decode_batch(msg.value)
                    trace = assemble(batch.events, bytes.fromhex(want.decode()))
        consumer.close()
        assert trace is not None, "the worker never emitted the job's trace"
    finally:
        stop(worker)
        for p in procs:
            if p.poll() is None:
                p.kill()

    hosts = {h for h, _pid in trace.processes}
    assert hosts == {"A", "B", "C"}
    argv = {p.host_id: p.argv for p in trace.processes.values() if p.argv}
    assert "coordinator" in argv["A"] and "worker" in argv["B"] and "worker" in argv["C"]
    assert_cross_host_job(trace, OFFSETS)
