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

__all__ = ["ROOT", "SYSWEAVE", "consume_events", "make_topics", "new_suffix"]


def new_suffix() -> str:
    return f".t{uuid.uuid4().hex[:10]}"


def make_topics(bootstrap: str, suffix: str, partitions: int = 2) -> None:
    """The product's own `sysweave topics create` on this test's topics (a consumer of a missing topic waits
    minutes for a metadata refresh)."""
    out = subprocess.run([*SYSWEAVE, "topics", "create", "--kafka", bootstrap, "--partitions", str(partitions)],
                         env={**os.environ, "SYSWEAVE_TOPIC_SUFFIX": suffix}, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr


def consume_events(bootstrap: str, suffix: str, done: Callable[[list[Any]], bool], timeout_s: float = 60.0,
                   keys: Sequence[bytes] | None = None) -> list[Any]:
    """Events on this suffix's events topic, from the beginning, until ``done(events)`` or the timeout."""
    from kafka import KafkaConsumer

    from sysweave.schemas import codec, topics

    consumer = KafkaConsumer(topics.TOPIC_EVENTS + suffix, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                             group_id=None, consumer_timeout_ms=1000)
    events: list[Any] = []
    end = time.monotonic() + timeout_s
    try:
        while time.monotonic() < end and not done(events):
            for msg in consumer:
                if keys is None or msg.key in keys:
                    events.extend(codec.decode_batch(msg.value).events)
                if done(events):
                    break
    finally:
        consumer.close()
    return events
