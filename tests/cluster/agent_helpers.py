"""Run `sysweave agent` against the real broker on a test's own topics and read back what it shipped."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
SYSWEAVE = [sys.executable, "-m", "sysweave.cli.main"]

__all__ = ["ROOT", "SYSWEAVE", "WORKLOAD", "consume_events", "free_port", "make_topics", "new_suffix", "stat_calls",
           "wait_metrics"]

# A process that, each time GO appears, stat()s MARKER N times, then touches DONE; it exits when STOP appears.
WORKLOAD = r"""
import os, sys, time
marker, go, done, stop, n = sys.argv[1:6]
while not os.path.exists(stop):
    if os.path.exists(go):
        os.unlink(go)
        for _ in range(int(n)):
            try:
                os.stat(marker)
            except FileNotFoundError:
                pass
        open(done, "w").close()
    time.sleep(0.02)
"""
STAT_NAMES = frozenset({"newfstatat", "stat", "statx", "fstatat64", "lstat"})


def new_suffix() -> str:
    return f".t{uuid.uuid4().hex[:10]}"


def make_topics(bootstrap: str, suffix: str, partitions: int = 2) -> None:
    """The product's own `sysweave topics create` on this test's topics (a consumer of a missing topic waits
    minutes for a metadata refresh)."""
    out = subprocess.run([*SYSWEAVE, "topics", "create", "--kafka", bootstrap, "--partitions", str(partitions)],
                         env={**os.environ, "SYSWEAVE_TOPIC_SUFFIX": suffix}, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr


def consume_events(bootstrap: str, suffix: str, done: Callable[[list[Any]], bool] | None = None, timeout_s: float = 60.0,
                   keys: Sequence[bytes] | None = None) -> list[Any]:
    """Events on this suffix's events topic, from the beginning, until ``done(events)`` or the timeout; without
    ``done``, until the topic has been idle for a second (use it once the agent has exited and flushed)."""
    from kafka import KafkaConsumer

    from sysweave.schemas import codec, topics

    consumer = KafkaConsumer(topics.TOPIC_EVENTS + suffix, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                             group_id=None, consumer_timeout_ms=1000)
    events: list[Any] = []
    end = time.monotonic() + timeout_s
    try:
        while time.monotonic() < end and not (done and done(events)):
            got = 0
            for msg in consumer:
                got += 1
                if keys is None or msg.key in keys:
                    events.extend(codec.decode_batch(msg.value).events)
                if done and done(events):
                    break
            if done is None and got == 0 and events:
                break
    finally:
        consumer.close()
    return events


def stat_calls(events: list[Any], pid: int) -> int:
    """Exact count of stat-family calls by ``pid`` in the shipped aggregate windows."""
    from sysweave.schemas.events import SyscallAggregate

    return sum(e.calls for e in events if isinstance(e, SyscallAggregate) and e.h.pid == pid and e.name in STAT_NAMES)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_metrics(port: int, proc: subprocess.Popen[bytes], timeout_s: float = 120.0) -> str:
    """The agent's /metrics text once it answers (it starts serving after the BPF program loaded)."""
    import urllib.request

    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise AssertionError(f"the agent exited with {proc.returncode} before serving metrics")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
                return r.read().decode()
        except OSError:
            time.sleep(0.3)
    raise AssertionError(f"no metrics on 127.0.0.1:{port} within {timeout_s} s")
