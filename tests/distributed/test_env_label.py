"""A job names itself: ``SYSWEAVE_TRACE_LABEL`` or a W3C ``TRACEPARENT`` in the traced program's own
environment, read by the kernel program at exec, keys that program and its descendants (publisher), and the
worker makes it the trace's label, or the traceparent's trace id its trace id."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from sysweave.agents.publisher import Publisher
from sysweave.agents.records import REC_EXEC, RecordDecoder
from sysweave.schemas import topics
from sysweave.schemas.events import CausalStamp, EventHeader, ProcessEvent, ProcessEventType, SyscallSpan, make_event_id
from sysweave.streams.buffer import trace_id_for

TP = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def test_key_from_env() -> None:
    assert topics.key_from_env(["PATH=/bin", "SYSWEAVE_TRACE_LABEL=job-7"]) == b"job-7"
    assert topics.key_from_env([f"TRACEPARENT={TP}", "SYSWEAVE_TRACE_LABEL=job-7"]) == b"job-7"  # the label wins
    key = topics.key_from_env([f"TRACEPARENT={TP}"])
    assert key == b"w3c/4bf92f3577b34da6a3ce929d0e0e4736"
    assert trace_id_for(key) == bytes.fromhex("4bf92f3577b34da6a3ce929d0e0e4736")
    assert topics.label_of_key(key, ["h"]) == ""
    for bad in ("00-" + "0" * 32 + "-00f067aa0ba902b7-01", "ff-" + TP[3:], "00-xyz-00f067aa0ba902b7-01", "junk"):
        assert topics.key_from_env([f"TRACEPARENT={bad}"]) is None, bad
    assert topics.key_from_env(["SYSWEAVE_TRACE_LABEL="]) is None


def test_exec_record_env_entries_are_decoded_apart_from_argv() -> None:
    from tests.capture.test_units import PATH_CAP, record

    d = RecordDecoder("h", 1, 10**18, PATH_CAP)
    argv, env = b"/bin/job\0--x\0", b"SYSWEAVE_TRACE_LABEL=job-9\0SYSWEAVE_SDK_SOCKET=/s\0"
    (ev,) = list(d.decode(record(REC_EXEC, 0, 0, (2, len(argv) + 1, 0, 0, 0, 0), d1=b"/bin/job\0", d2=argv + env,
                                 aux=10)))
    assert isinstance(ev, ProcessEvent) and ev.argv == ("/bin/job", "--x")
    assert d.exec_env[10] == ("SYSWEAVE_TRACE_LABEL=job-9", "SYSWEAVE_SDK_SOCKET=/s")
    (ev,) = list(d.decode(record(REC_EXEC, 0, 0, (2, 0, 0, 0, 0, 0), d1=b"/bin/job\0", d2=argv, aux=10)))
    assert ev.argv == ("/bin/job", "--x") and 10 not in d.exec_env  # a later exec without one forgets it


def _h(pid: int, n: int) -> EventHeader:
    return EventHeader(make_event_id(5, n), "h", pid, pid, n, n, 0, CausalStamp(0, 0))


def test_publisher_keys_a_named_exec_and_its_descendants(tmp_path: Path) -> None:
    from sysweave.agents.spool import Spool

    env = {20: ("SYSWEAVE_TRACE_LABEL=job-9",)}
    pub = Publisher("k:9092", "h", Spool(str(tmp_path), 1 << 20), producer_factory=lambda: None,
                    parent_of={20: 10, 30: 20}.get, env_of=env.get)
    pub.add_root(10)
    seq = [ProcessEvent(_h(10, 1), ProcessEventType.FORK, 10, 20),
           SyscallSpan(_h(20, 2), 59, "execve", 0),  # before its exec: still the launcher's tree
           ProcessEvent(_h(20, 3), ProcessEventType.EXEC, filename="/bin/job"),
           ProcessEvent(_h(20, 4), ProcessEventType.FORK, 20, 30),
           SyscallSpan(_h(30, 5), 0, "read", 0),
           ProcessEvent(_h(10, 6), ProcessEventType.WAIT, 10, 20)]
    assert [pub.key_for(e) for e in seq] == [b"h/10", b"h/10", b"job-9", b"job-9", b"job-9", b"h/10"]




@pytest.mark.bpf
@pytest.mark.kafka
@pytest.mark.usefixtures("bpf_ready")
def test_agent_keys_by_the_programs_own_environment(kafka_bootstrap: str, tmp_path: Path) -> None:
    """A real agent: children exec'd with SYSWEAVE_TRACE_LABEL / TRACEPARENT in their environment (the agent
    has none) ship under those keys; the launcher stays under its tree key."""
    from kafka import KafkaConsumer

    from sysweave.schemas import codec

    from .helpers import create_topics

    suffix = f"-envlabel-{uuid.uuid4().hex[:8]}"
    create_topics(kafka_bootstrap, suffix)
    label = f"job-{uuid.uuid4().hex[:6]}"
    script = ("import os, subprocess, sys\n"
              f"subprocess.run(['/bin/echo', 'one'], env={{**os.environ, 'SYSWEAVE_TRACE_LABEL': '{label}'}})\n"
              f"subprocess.run(['/bin/echo', 'two'], env={{**os.environ, 'TRACEPARENT': '{TP}'}})\n")
    env = {k: v for k, v in os.environ.items() if k not in ("SYSWEAVE_TRACE_LABEL", "TRACEPARENT")}
    out = subprocess.run([sys.executable, "-m", "sysweave.cli.main", "agent", "--kafka", kafka_bootstrap, "--host-id",
                          "envh", "--metrics-port", "0", "--spool", str(tmp_path / "spool"), "--", sys.executable, "-c",
                          script], env={**env, "SYSWEAVE_TOPIC_SUFFIX": suffix}, capture_output=True, timeout=300)
    assert out.returncode == 0, out.stdout.decode()[-2000:] + out.stderr.decode()[-2000:]
    consumer = KafkaConsumer(topics.TOPIC_EVENTS + suffix, bootstrap_servers=kafka_bootstrap,
                             auto_offset_reset="earliest", group_id=None, consumer_timeout_ms=3000)
    argv_by_key: dict[bytes, set[str]] = {}
    end = time.monotonic() + 60
    while time.monotonic() < end and len(argv_by_key) < 3:
        for msg in consumer:
            for e in codec.decode_batch(msg.value).events:
                if isinstance(e, ProcessEvent) and e.type is ProcessEventType.EXEC:
                    argv_by_key.setdefault(msg.key, set()).add(" ".join(e.argv))
    consumer.close()
    assert argv_by_key.get(label.encode()) == {"/bin/echo one"}, argv_by_key
    assert argv_by_key.get(b"w3c/4bf92f3577b34da6a3ce929d0e0e4736") == {"/bin/echo two"}, argv_by_key
    assert any(k.startswith(b"envh/") for k in argv_by_key), argv_by_key
