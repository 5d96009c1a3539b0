"""Kafka topics and partition keys: the contract between agents, stream workers and the validator.

Partitioning: agents key raw event batches by **trace key** = "<host_id>/<root pid>" of the traced process
tree, so one process's events stay in order on one partition and all processes of a tree land on the same
worker, which can assemble it without a shuffle. Trade-off: a job that spans hosts meets on one worker only
when its agents share a trace label (``--trace-label``), which then replaces the key; without one, each
host's tree is its own trace. A single very busy tree cannot be spread over several workers.
"""

from __future__ import annotations

import os
from typing import Final

# SYSWEAVE_TOPIC_SUFFIX isolates a deployment's (or a benchmark's) topics on a shared broker.
_SUFFIX: Final = os.environ.get("SYSWEAVE_TOPIC_SUFFIX", "")

TOPIC_EVENTS: Final = "sysweave.events.v1" + _SUFFIX  # agent batches (codec envelopes), key = trace key
TOPIC_CONTROL: Final = "sysweave.control.v1" + _SUFFIX  # sampling decisions back to agents, key = host id
TOPIC_TRACES: Final = "sysweave.traces.v1" + _SUFFIX  # assembled traces and updates, key = trace id (hex)
TOPIC_VALIDATION: Final = "sysweave.validation.v1" + _SUFFIX  # validation requests, key = request id
TOPIC_DEAD_LETTER: Final = "sysweave.deadletter.v1" + _SUFFIX  # poison messages with the reason in headers

ALL_TOPICS: Final = (TOPIC_EVENTS, TOPIC_CONTROL, TOPIC_TRACES, TOPIC_VALIDATION, TOPIC_DEAD_LETTER)


def trace_key(host_id: str, root_pid: int) -> bytes:
    """Partition key of a traced process tree's events. Example: trace_key("h1", 42) == b"h1/42"."""
    return f"{host_id}/{root_pid}".encode()


def dead_letter_headers(reason: str, source_topic: str, partition: int, offset: int) -> list[tuple[str, bytes]]:
    """Kafka headers attached to a dead-lettered message: why, and where it came from (for replay)."""
    return [
        ("sysweave.reason", reason.encode()[:4096]),
        ("sysweave.source", f"{source_topic}/{partition}@{offset}".encode()),
    ]
