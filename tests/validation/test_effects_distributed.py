"""A job across the three-namespace test bed, validated from its stored traces (issue 9's distributed test).

Three "hosts" (network namespaces A, B, C), an agent each (own host id, injected clock offset), the real
Kafka broker, a Faust stream worker assembling each run into one trace, the validator service storing them
in ClickHouse 18.16. The job runs three times, each run in its own directories: twice faithfully, once with
the worker on host C computing one count wrong. Workers write ``out/N.txt`` by an absolute path under their
working directory (different in every run), so paths must compare relative to each host's working directory.
Then ``sysweave validate --original-trace/--transpiled-trace`` (and ``--submit`` to the service) must find
the two faithful runs equivalent, and the wrong one divergent at host C's file, before the symptoms."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from distributed.helpers import network_testbed  # tests/distributed (pytest puts tests/ on the path)
from sysweave.schemas import topics

pytestmark = [pytest.mark.bpf, pytest.mark.kafka, pytest.mark.clickhouse, pytest.mark.usefixtures("bpf_ready")]

SYSWEAVE = [sys.executable, "-m", "sysweave.cli.main"]
OFFSETS = {"A": 0, "B": 4_000_000, "C": -2_000_000}
LINKS = {"B": ("10.78.1.1", "10.78.1.2"), "C": ("10.78.2.1", "10.78.2.2")}
JOB = '''
import os, socket, sys, time
def worker(port, wrong):
    srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("0.0.0.0", port)); srv.listen(1)
    conn, _ = srv.accept()
    os.makedirs(os.path.join(os.getcwd(), "out"), exist_ok=True)
    for line in conn.makefile("rb", buffering=0):
        cmd = line.decode().split()
        if cmd[0] == "quit":
            break
        n = int(cmd[1])
        count = n * n + (1 if wrong and n == 3 else 0)
        with open(os.path.join(os.getcwd(), "out", f"{n}.txt"), "w") as f:   # absolute, under the cwd
            f.write(f"{count}\\n")
        conn.sendall(f"done {n} {count}\\n".encode())
def coordinator(rounds, peers):
    conns = []
    for peer in peers:
        host, port = peer.rsplit(":", 1)
        for _ in range(200):
            try:
                conns.append(socket.create_connection((host, int(port)), timeout=10)); break
            except OSError:
                time.sleep(0.05)
    total = 0
    for i in range(rounds):
        for c in conns:
            c.sendall(f"work {i}\\n".encode())
            reply = b""
            while not reply.endswith(b"\\n"):
                reply += c.recv(64)
            total += int(reply.split()[2])
    for c in conns:
        c.sendall(b"quit\\n"); c.close()
    print(f"total {total}")
if sys.argv[1] == "worker":
    worker(int(sys.argv[2]), sys.argv[3:] == ["wrong"])
else:
    coordinator(int(sys.argv[2]), sys.argv[3:])
'''


@pytest.fixture(scope="module")
def testbed() -> Iterator[dict[str, str]]:
    yield from network_testbed("sv", LINKS)


def run_job(testbed: dict[str, str], kafka: str, env: dict[str, str], label: str, root: Path, script: Path,
            wrong_on: str = "") -> None:
    procs = []

    def agent(host: str, *cmd: str) -> subprocess.Popen[bytes]:
        cwd = root / host
        cwd.mkdir(parents=True)
        return subprocess.Popen([*SYSWEAVE, "agent", "--kafka", kafka, "--host-id", host, "--trace-label", label,
                                 "--metrics-port", "0", "--observable", "--clock-offset-ns", str(OFFSETS[host]),
                                 "--netns", testbed[host], "--spool", f"/tmp/sysweave-effects-spool-{label}-{host}",
                                 "--", *cmd], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, cwd=cwd)

    try:
        for host in "BC":
            procs.append(agent(host, sys.executable, str(script), "worker", "7000",
                               *(["wrong"] if host == wrong_on else [])))
        time.sleep(6)  # the agents load their BPF programs and start the workers
        procs.append(agent("A", sys.executable, str(script), "coordinator", "5", *(f"{LINKS[h][1]}:7000" for h in "BC")))
        for p in procs:
            out, _ = p.communicate(timeout=180)
            assert p.returncode == 0, out.decode()[-2000:]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()


def test_distributed_job_verdicts_name_the_host_and_file(testbed, kafka_bootstrap: str, clickhouse_hostport,
                                                         tmp_path: Path) -> None:
    from kafka import KafkaProducer

    from distributed.helpers import create_topics, stop  # tests/distributed (pytest puts tests/ on the path)
    from sysweave.schemas.topics import ValidationRequest
    from sysweave.validator.service import ValidatorService

    tag = uuid.uuid4().hex[:8]
    suffix = f"-effects-{tag}"
    env = {**os.environ, "SYSWEAVE_TOPIC_SUFFIX": suffix}
    create_topics(kafka_bootstrap, suffix)
    # (create_topics made the validation topic too)
    db = f"effects_{tag}"
    url = f"clickhouse://{clickhouse_hostport[0]}:{clickhouse_hostport[1]}/{db}"
    script = tmp_path / "job.py"
    script.write_text(JOB)
    worker = subprocess.Popen([*SYSWEAVE, "streams", "worker", "--kafka", kafka_bootstrap, "--grace-s", "3",
                               "--app-id", f"streams{suffix}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              env=env)
    svc = ValidatorService(kafka_bootstrap, url, group=f"validator{suffix}", traces_topic=topics.TOPIC_TRACES + suffix,
                           validation_topic=topics.TOPIC_VALIDATION + suffix,
                           dead_letter_topic=topics.TOPIC_DEAD_LETTER + suffix)
    svc.sink.migrate()
    labels = {"faithful": f"job-{tag}-1", "again": f"job-{tag}-2", "wrong": f"job-{tag}-3"}
    try:
        for name, label in labels.items():
            run_job(testbed, kafka_bootstrap, env, label, tmp_path / name, script, "C" if name == "wrong" else "")
        assert (tmp_path / "wrong" / "C" / "out" / "3.txt").read_text() == "10\n"
        end = time.monotonic() + 180
        while svc.stats["traces"] < 3 and time.monotonic() < end:
            svc.run_once(1000)
        assert svc.stats["traces"] >= 3, svc.stats

        def validate(a: str, b: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run([*SYSWEAVE, "validate", "--original-trace", a, "--transpiled-trace", b,
                                   "--clickhouse", url, "--json"], capture_output=True, text=True, timeout=300, env=env)

        same = validate(labels["faithful"], labels["again"])
        assert same.returncode == 0, same.stdout[-3000:] + same.stderr[-3000:]
        bad = validate(labels["faithful"], labels["wrong"])
        assert bad.returncode == 1, bad.stdout[-3000:] + bad.stderr[-3000:]
        report = json.loads(bad.stdout)
        first = report["divergence"]
        assert (first["host"], first["resource"]) == ("C", "file:C: ./out/3.txt"), report["explanation"]
        assert "worker" in first["role"] and report["explanation"].startswith("on host C, ")
        assert "byte 0 of ./out/3.txt differs: '9\\n' vs '10\\n'" in report["explanation"]
        assert any(s["resource"] == "A: stdout" for s in report["symptoms"])  # the total printed on host A
        assert report["performance"]["speedup"] and report["backend"]["original"]

        # the same typed request through the validator service
        req = ValidationRequest(labels["faithful"], labels["wrong"], f"req-{tag}")
        prod = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
        prod.send(topics.TOPIC_VALIDATION + suffix, key=req.request_id.encode(), value=req.encode()).get(30)
        prod.close()
        end = time.monotonic() + 60
        while svc.stats["validations"] < 1 and time.monotonic() < end:
            svc.run_once(1000)
        rows = svc.sink.execute(f"SELECT verdict, explanation, speedup FROM validation_results FINAL "
                                f"WHERE validation_id = 'req-{tag}'")
        assert rows and rows[0][0] == "divergent" and rows[0][1] == report["explanation"] and rows[0][2] > 0
    finally:
        stop(worker)
        try:
            svc.sink.execute(f"DROP DATABASE IF EXISTS {db}")
        finally:
            svc.close()
