"""Cross-host traces with no labels: three "hosts" (network namespaces), one node-style agent each covering only
its host's processes (``--cgroup`` on a per-host cgroup v2 directory; every host's processes run in its netns
AND its cgroup), no ``--trace-label`` anywhere, the real broker, a real Faust worker and the validator service
writing into the ClickHouse server.

1. A coordinator on A with workers on B and C is ONE trace: all three hosts, TCP edges both ways on both
   links, clock offsets recovered within their bounds (the stream layer's join, ``sysweave.streams.join``).
2. Two unrelated clients on A of one server on B stay TWO traces, each holding only its own connection's
   window of the server."""

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
from sysweave.schemas.events import EdgeKind, UnifiedTrace
from sysweave.streams.buffer import trace_id_for
from sysweave.streams.pipeline.assembly import assemble

from .helpers import assert_cross_host_job, create_topics, stop
from .test_multihost import JOB, LINKS, OFFSETS, SYSWEAVE, testbed  # noqa: F401  (testbed: a fixture)

pytestmark = [pytest.mark.bpf, pytest.mark.kafka, pytest.mark.slow, pytest.mark.usefixtures("bpf_ready")]

CGROUP2_ROOTS = ("/sys/fs/cgroup/unified", "/sys/fs/cgroup")


@pytest.fixture
def cgroups() -> Iterator[dict[str, Path]]:
    root = next((Path(r) for r in CGROUP2_ROOTS if (Path(r) / "cgroup.procs").exists()
                 and (Path(r) / "cgroup.controllers").exists()), None)
    if root is None:
        pytest.fail("no cgroup v2 hierarchy mounted", pytrace=False)
    tag = uuid.uuid4().hex[:6]
    dirs = {h: root / f"sysweave-host{h}-{tag}" for h in "ABC"}
    for d in dirs.values():
        d.mkdir()
    yield dirs
    for d in dirs.values():
        for _ in range(100):
            try:
                d.rmdir()
                break
            except OSError:
                time.sleep(0.1)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_metrics(port: int, proc: subprocess.Popen[bytes], timeout_s: float = 240) -> None:
    import urllib.request

    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        assert proc.poll() is None, proc.communicate()[0].decode()[-2000:]
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2).read()
            return
        except OSError:
            time.sleep(0.5)
    raise AssertionError("agent never served its metrics")


def on_host(netns: str, cgroup: Path, *cmd: str) -> subprocess.Popen[bytes]:
    """A process of a host: in its cgroup from its first instruction (the shell joins it, then execs), in its netns."""
    script = f'echo $$ > {cgroup}/cgroup.procs && exec ip netns exec {netns} "$@"'
    return subprocess.Popen(["sh", "-c", script, "sh", *cmd], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def collect(bootstrap: str, suffix: str, want: set[bytes], timeout_s: float) -> dict[bytes, UnifiedTrace]:
    """The latest emission of each wanted trace id (hex keys) within ``timeout_s``, assembled."""
    consumer = KafkaConsumer(topics.TOPIC_TRACES + suffix, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                             consumer_timeout_ms=2000)
    got: dict[bytes, UnifiedTrace] = {}
    end = time.monotonic() + timeout_s
    while time.monotonic() < end and not want <= set(got):
        for msg in consumer:
            if msg.key in want:
                got[msg.key] = assemble(codec.decode_batch(msg.value).events, bytes.fromhex(msg.key.decode()))
    consumer.close()
    return got


def test_no_labels_one_job_one_trace_and_unrelated_clients_apart(testbed, cgroups, kafka_bootstrap: str,  # noqa: F811
                                                                 clickhouse_hostport: tuple[str, int],
                                                                 tmp_path: Path) -> None:
    from sysweave.validator.service import ValidatorService

    tag = uuid.uuid4().hex[:8]
    suffix = f"-nolabel-{tag}"
    env = {k: v for k, v in os.environ.items() if k != "SYSWEAVE_TRACE_LABEL"} | {"SYSWEAVE_TOPIC_SUFFIX": suffix}
    create_topics(kafka_bootstrap, suffix)
    db = f"nolabel_{tag}"
    svc = ValidatorService(kafka_bootstrap, f"clickhouse://{clickhouse_hostport[0]}:{clickhouse_hostport[1]}/{db}",
                           group=f"validator{suffix}", traces_topic=topics.TOPIC_TRACES + suffix,
                           validation_topic=topics.TOPIC_VALIDATION + suffix,
                           dead_letter_topic=topics.TOPIC_DEAD_LETTER + suffix)
    svc.sink.migrate()
    worker = subprocess.Popen([*SYSWEAVE, "streams", "worker", "--kafka", kafka_bootstrap, "--grace-s", "3",
                               "--join-wait-s", "20", "--app-id", f"streams{suffix}"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    agents: list[subprocess.Popen[bytes]] = []
    jobs: list[subprocess.Popen[bytes]] = []
    try:
        ports = {}
        for h in "ABC":
            ports[h] = free_port()
            agents.append(subprocess.Popen(
                [*SYSWEAVE, "agent", "--kafka", kafka_bootstrap, "--host-id", h, "--cgroup", str(cgroups[h]),
                 "--netns", testbed[h], "--clock-offset-ns", str(OFFSETS[h]), "--observable", "--window-s", "1",
                 "--metrics-port", str(ports[h]), "--spool", str(tmp_path / f"spool-{h}")],
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env))
        for h, a in zip("ABC", agents):
            wait_metrics(ports[h], a)
        # no settling sleep: an agent sets its cgroup target before its metrics endpoint answers (daemon.py)

        py = sys.executable
        # 1. one job over three hosts
        workers = [on_host(testbed[h], cgroups[h], py, str(JOB), "worker", "7000", str(tmp_path / h)) for h in "BC"]
        time.sleep(2)
        coord = on_host(testbed["A"], cgroups["A"], py, str(JOB), "coordinator", "20",
                        *(f"{LINKS[h][1]}:7000" for h in "BC"))
        # 2. one server on B, two unrelated clients on A, one after the other
        server = on_host(testbed["B"], cgroups["B"], py, str(JOB), "worker", "7100", str(tmp_path / "srv"), "2")
        jobs += [*workers, coord, server]
        for p in (*workers, coord):
            out, _ = p.communicate(timeout=180)
            assert p.returncode == 0, out.decode()[-2000:]
        clients = []
        for _ in range(2):
            c = on_host(testbed["A"], cgroups["A"], py, str(JOB), "coordinator", "5", f"{LINKS['B'][1]}:7100")
            jobs.append(c)
            out, _ = c.communicate(timeout=120)
            assert c.returncode == 0, out.decode()[-2000:]
            clients.append(c)
            time.sleep(1)
        out, _ = server.communicate(timeout=60)
        assert server.returncode == 0, out.decode()[-2000:]

        keys = {"job": topics.trace_key("A", coord.pid)} | {f"client{i}": topics.trace_key("A", c.pid)
                                                            for i, c in enumerate(clients)}
        ids = {name: trace_id_for(k).hex().encode() for name, k in keys.items()}
        time.sleep(30)  # trees close (grace), servers' windows are forwarded, the joined traces close
        got = collect(kafka_bootstrap, suffix, set(ids.values()), 150)
        # and the validator service stores the joined job as one trace in ClickHouse
        end = time.monotonic() + 120
        stored = None
        while time.monotonic() < end:
            svc.run_once(1000)
            try:
                stored = svc.sink.load_trace(ids["job"].decode())
            except LookupError:
                continue
            if {h for h, _ in stored.processes} == {"A", "B", "C"}:
                break
    finally:
        for p in jobs:
            if p.poll() is None:
                p.kill()
        for a in agents:
            stop(a)
        stop(worker)
        try:
            svc.sink.execute(f"DROP DATABASE IF EXISTS {db}")
        finally:
            svc.close()

    assert stored is not None, "the joined trace never reached ClickHouse"
    assert {h for h, _ in stored.processes} == {"A", "B", "C"}
    assert {e.kind for e in stored.edges} >= {EdgeKind.TCP}
    assert {c.host for c in stored.clocks} == {"B", "C"}

    assert set(ids.values()) <= set(got), f"missing traces: {set(ids.values()) - set(got)}"
    trace = got[ids["job"]]
    assert {h for h, _ in trace.processes} == {"A", "B", "C"}
    argv = {p.host_id: " ".join(p.argv) for p in trace.processes.values() if p.argv}
    assert "coordinator" in argv["A"] and "worker" in argv["B"] and "worker" in argv["C"], argv
    assert_cross_host_job(trace, OFFSETS)

    one, two = got[ids["client0"]], got[ids["client1"]]
    for mine, other, cl in ((one, two, clients[0]), (two, one, clients[1])):
        pids = set(mine.processes)
        assert ("A", cl.pid) in pids and any(h == "B" for h, _ in pids), pids  # its window of the server
        assert not any(h == "A" and pid != cl.pid for h, pid in pids), pids  # not the other client
        b_ids = {e.h.event_id for (h, _), p in mine.processes.items() if h == "B" for e in p.events}
        b_other = {e.h.event_id for (h, _), p in other.processes.items() if h == "B" for e in p.events}
        assert not b_ids & b_other  # each window went to one client only
