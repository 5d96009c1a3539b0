"""Three "hosts" (network namespaces joined by veth pairs), one agent each with its own host id and an
injected clock offset, the real Kafka broker and a real Faust worker: one assembled trace with every
process, TCP causal edges across hosts, and clock offsets recovered within their stated bounds."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from kafka import KafkaConsumer

from sysweave.schemas import codec, topics
from sysweave.schemas.events import EdgeKind, SyscallSpan
from sysweave.streams.buffer import trace_id_for
from sysweave.streams.pipeline.assembly import assemble

from .helpers import create_topics, stop

pytestmark = [pytest.mark.bpf, pytest.mark.kafka, pytest.mark.usefixtures("bpf_ready")]

JOB = Path(__file__).resolve().parents[1] / "fixtures" / "distributed_job.py"
SYSWEAVE = [sys.executable, "-m", "sysweave.cli.main"]
OFFSETS = {"A": 0, "B": 5_000_000, "C": -3_000_000}  # ns, injected per agent (--clock-offset-ns)
LINKS = {"B": ("10.77.1.1", "10.77.1.2"), "C": ("10.77.2.1", "10.77.2.2")}


def sh(*cmd: str) -> None:
    subprocess.run(cmd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def testbed():
    tag = uuid.uuid4().hex[:4]
    ns = {h: f"sw{h}{tag}" for h in "ABC"}
    try:
        for name in ns.values():
            sh("ip", "netns", "add", name)
            sh("ip", "-n", name, "link", "set", "lo", "up")
        for peer, (a_ip, p_ip) in LINKS.items():
            a_if, p_if = f"a{peer}{tag}", f"{peer.lower()}a{tag}"
            sh("ip", "link", "add", a_if, "type", "veth", "peer", "name", p_if)
            sh("ip", "link", "set", a_if, "netns", ns["A"])
            sh("ip", "link", "set", p_if, "netns", ns[peer])
            sh("ip", "-n", ns["A"], "addr", "add", f"{a_ip}/24", "dev", a_if)
            sh("ip", "-n", ns[peer], "addr", "add", f"{p_ip}/24", "dev", p_if)
            sh("ip", "-n", ns["A"], "link", "set", a_if, "up")
            sh("ip", "-n", ns[peer], "link", "set", p_if, "up")
        yield ns
    finally:
        for name in ns.values():
            subprocess.run(["ip", "netns", "del", name], capture_output=True)


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
    events = {e.h.event_id: e for p in trace.processes.values() for e in p.events}
    tcp = [e for e in trace.edges if e.kind is EdgeKind.TCP]
    cross = {(events[e.src].h.host_id, events[e.dst].h.host_id) for e in tcp if e.src in events and e.dst in events}
    assert {("A", "B"), ("B", "A"), ("A", "C"), ("C", "A")} <= cross
    for e in tcp:  # after correction no receive completes before its send starts
        s, r = events[e.src], events[e.dst]
        assert isinstance(s, SyscallSpan) and isinstance(r, SyscallSpan)
        assert r.h.wall_ns + r.h.duration_ns >= s.h.wall_ns
    est = {c.host: c for c in trace.clocks}
    for host in "BC":
        c = est[host]
        assert c.reference == "A"
        assert abs(c.offset_ns - OFFSETS[host]) <= c.bound_ns, (host, c.offset_ns, c.bound_ns)
        assert c.bound_ns < 2_000_000  # the bound is informative, not vacuous
