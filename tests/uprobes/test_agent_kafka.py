"""Distributed mode: `sysweave agent --uprobe ... --gpu` publishes compute blocks, exact function aggregates and
driver-API GPU spans to Kafka like every other event (the stand-in libcuda again: tests only, not a driver)."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections import Counter
from pathlib import Path

import pytest

from sysweave.schemas import codec
from sysweave.schemas.events import ComputeBlock, Event, FunctionAggregate, GpuKernel
from sysweave.schemas.topics import ControlDecision, OperationClass

pytestmark = [pytest.mark.kafka, pytest.mark.bpf]
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
SYSWEAVE = [sys.executable, "-m", "sysweave.cli.main"]


def create_topics(bootstrap: str, suffix: str) -> None:
    from kafka.admin import KafkaAdminClient, NewTopic

    from sysweave.schemas import topics

    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    admin.create_topics([NewTopic(t + suffix, 1, 1) for t in (topics.TOPIC_EVENTS, topics.TOPIC_CONTROL)])
    admin.close()


def published(bootstrap: str, topic: str) -> list[Event]:
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", consumer_timeout_ms=3000)
    try:
        return [e for m in consumer for e in codec.decode_batch(m.value).events]
    finally:
        consumer.close()


def test_agent_publishes_function_probe_and_gpu_events(kafka_bootstrap: str, tmp_path: Path) -> None:
    subprocess.run(["cc", "-O1", "-shared", "-fPIC", "-o", str(tmp_path / "libuprobe_lib.so"),
                    str(FIXTURES / "uprobe_lib.c")], check=True)
    subprocess.run(["cc", "-O1", "-fno-inline", "-o", str(tmp_path / "uprobe_work"), str(FIXTURES / "uprobe_work.c"),
                    f"-L{tmp_path}", "-luprobe_lib", f"-Wl,-rpath,{tmp_path}"], check=True)
    subprocess.run(["cc", "-O1", "-shared", "-fPIC", "-Wl,-soname,libcuda.so.1", "-o", str(tmp_path / "libcuda.so.1"),
                    str(FIXTURES / "cuda_standin.c")], check=True)
    subprocess.run(["cc", "-O1", "-o", str(tmp_path / "cuda_app"), str(FIXTURES / "cuda_app.c"), f"-L{tmp_path}",
                    "-l:libcuda.so.1", f"-Wl,-rpath,{tmp_path}"], check=True)
    suffix = f".uprobe-{uuid.uuid4().hex[:8]}"
    create_topics(kafka_bootstrap, suffix)
    env = {**os.environ, "SYSWEAVE_TOPIC_SUFFIX": suffix}
    common = ["agent", "--kafka", kafka_bootstrap, "--metrics-port", "0", "--window-s", "0.2",
              "--spool", str(tmp_path / "spool")]
    res = subprocess.run([*SYSWEAVE, *common, "--uprobe", "slow_step(n=arg1)", "--uprobe", "/^vec_/", "--",
                          str(tmp_path / "uprobe_work"), "100", "3", "2000"], env=env, capture_output=True, text=True,
                         timeout=180)
    assert res.returncode == 0, res.stderr
    res = subprocess.run([*SYSWEAVE, *common, "--gpu", "--cuda-lib", str(tmp_path / "libcuda.so.1"), "--",
                          str(tmp_path / "cuda_app")], env=env, capture_output=True, text=True, timeout=180)
    assert res.returncode == 0, res.stderr
    assert "GPU layer partly off" in res.stderr  # no NVML here: said once, the agent went on
    events = published(kafka_bootstrap, "sysweave.events.v1" + suffix)
    blocks = [e for e in events if isinstance(e, ComputeBlock)]
    assert sorted(b.elements for b in blocks if b.symbol == "slow_step") == [4096, 4097, 4098]
    calls: Counter[str] = Counter()
    for a in (e for e in events if isinstance(e, FunctionAggregate)):
        calls[a.symbol] += a.calls  # windows of 0.2 s: their sum is the exact total
    assert {k: calls[k] for k in ("slow_step", "vec_add", "vec_mul", "vec_dot", "cuLaunchKernel")} == \
        {"slow_step": 3, "vec_add": 1, "vec_mul": 2, "vec_dot": 3, "cuLaunchKernel": 5}
    kernels = [e for e in events if isinstance(e, GpuKernel)]
    assert [(k.name, k.grid, k.side) for k in kernels] == [("vecadd", (4096, 1, 1), "api")] * 3


def _gauges(port: int) -> dict[str, float]:
    import urllib.request

    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        text = r.read().decode()
    return {f"{s.name}{{{s.labels.get('class') or s.labels.get('source', '')}}}": s.value
            for fam in text_string_to_metric_families(text) for s in fam.samples if s.name.startswith("sysweave_agent_")}


def test_control_decision_moves_the_compute_threshold(kafka_bootstrap: str, tmp_path: Path) -> None:
    import socket
    import time

    from kafka import KafkaProducer

    from sysweave.schemas import topics

    subprocess.run(["cc", "-O1", "-shared", "-fPIC", "-o", str(tmp_path / "libuprobe_lib.so"),
                    str(FIXTURES / "uprobe_lib.c")], check=True)
    subprocess.run(["cc", "-O1", "-fno-inline", "-o", str(tmp_path / "uprobe_work"), str(FIXTURES / "uprobe_work.c"),
                    f"-L{tmp_path}", "-luprobe_lib", f"-Wl,-rpath,{tmp_path}"], check=True)
    suffix = f".uprobe-{uuid.uuid4().hex[:8]}"
    create_topics(kafka_bootstrap, suffix)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    host = "uprobe-control"
    proc = subprocess.Popen([*SYSWEAVE, "agent", "--kafka", kafka_bootstrap, "--host-id", host, "--metrics-port", str(port),
                             "--spool", str(tmp_path / "spool"), "--uprobe", "slow_step", "--",
                             str(tmp_path / "uprobe_work"), "0", "150", "100000"],  # 15 s of slow_step calls
                            env={**os.environ, "SYSWEAVE_TOPIC_SUFFIX": suffix}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    key = "sysweave_agent_uprobe_threshold_ns{compute}"
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap)
    try:
        end, g = time.monotonic() + 60, {}
        while key not in g and time.monotonic() < end and proc.poll() is None:
            time.sleep(0.5)
            try:
                g = _gauges(port)
            except OSError:
                continue
        assert g[key] == 50_000 and g["sysweave_agent_uprobe_threshold_ns{gpu_kernel}"] == 100_000
        decision = ControlDecision(host, 2_000_000, cls=OperationClass.COMPUTE).encode()
        end = time.monotonic() + 30
        while _gauges(port)[key] != 2_000_000 and time.monotonic() < end:
            producer.send(topics.TOPIC_CONTROL + suffix, key=host.encode(), value=decision).get(10)
            time.sleep(1)
        assert _gauges(port)[key] == 2_000_000
        assert _gauges(port)["sysweave_agent_slow_threshold_ns{}"] == 10_000  # the syscall threshold did not move
    finally:
        producer.close()
        proc.terminate()
        proc.wait(30)
