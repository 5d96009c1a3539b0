"""Distributed mode: ``sysweave agent -- CMD`` gives CMD the SDK socket, and the SDK's events travel to Kafka in the
agent's batches beside the syscalls, under the program's pid and threads."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import pytest
from tests.distributed.helpers import create_topics

from sysweave.schemas import codec
from sysweave.schemas.events import ComputeBlock, Mark, SyscallSpan, TranspilerDecision

pytestmark = [pytest.mark.bpf, pytest.mark.kafka, pytest.mark.usefixtures("bpf_ready")]

PROGRAM = textwrap.dedent("""
    import os, threading
    from sysweave import sdk
    def work():
        with sdk.compute_block("thread block", op="loop", elements=2, symbol="work"):
            os.stat("/")
        print(threading.get_native_id(), flush=True)
    t = threading.Thread(target=work); t.start(); t.join()
    sdk.transpiler_decision("A1", "inlined", "yes", target_symbol="work")
    sdk.mark("done")
    print(os.getpid(), sdk.stats()["sent"], flush=True)
""")


def test_agent_ships_sdk_events_to_kafka(tmp_path: Path, kafka_bootstrap: str) -> None:
    from kafka import KafkaConsumer

    suffix = f".sdk{uuid.uuid4().hex[:8]}"
    create_topics(kafka_bootstrap, suffix, partitions=1)
    prog = tmp_path / "prog.py"
    prog.write_text(PROGRAM)
    env = {**os.environ, "SYSWEAVE_TOPIC_SUFFIX": suffix}
    res = subprocess.run([sys.executable, "-m", "sysweave.cli.main", "agent", "--kafka", kafka_bootstrap,
                          "--metrics-port", "0", "--spool", str(tmp_path / "spool"), "--", sys.executable, str(prog)],
                         capture_output=True, text=True, timeout=240, env=env)
    assert res.returncode == 0, res.stderr
    assert "SDK socket SYSWEAVE_SDK_SOCKET=" in res.stderr
    thread_tid, (pid, sent) = int(res.stdout.split()[0]), map(int, res.stdout.split()[1:3])
    assert sent == 3

    consumer = KafkaConsumer("sysweave.events.v1" + suffix, bootstrap_servers=kafka_bootstrap,
                             auto_offset_reset="earliest", consumer_timeout_ms=2000, group_id=None)
    events = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for msg in consumer:
            events.extend(codec.decode_batch(msg.value).events)
        if sum(isinstance(e, (ComputeBlock, TranspilerDecision, Mark)) for e in events) >= 3:
            break
    consumer.close()
    mine = [e for e in events if e.h.pid == pid]
    block = next(e for e in mine if isinstance(e, ComputeBlock))
    assert (block.name, block.h.tid, block.source) == ("thread block", thread_tid, "sdk")
    assert any(isinstance(e, TranspilerDecision) and e.decision_id == "A1" for e in mine)
    assert any(isinstance(e, Mark) and e.name == "done" for e in mine)
    assert any(isinstance(e, SyscallSpan) for e in mine)  # the same batches carry the program's syscalls
