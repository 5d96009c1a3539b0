"""Kafka topics and partition keys: the contract between agents, stream workers and the validator.

Partitioning: agents key raw event batches by **trace key** = "<host_id>/<root pid>" of the traced process
tree, so one process's events stay in order on one partition and all processes of a tree land on the same
worker, which can assemble it without a shuffle. Trade-off: a job that spans hosts meets on one worker only
when its agents share a trace label (``--trace-label``), which then replaces the key; without one, each
host's tree is its own trace. A single very busy tree cannot be spread over several workers.

Labels travel on: the stream worker gives a trace whose key is a label (:func:`label_of_key`) that label
(``UnifiedTrace.label``) and sends it with the emitted trace on TOPIC_TRACES as the Kafka header
``sysweave.label`` (:data:`HEADER_LABEL`, UTF-8; absent when the trace has none); the validator service
reads it back from there, so the stored trace is findable by its label.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

# SYSWEAVE_TOPIC_SUFFIX isolates a deployment's (or a benchmark's) topics on a shared broker.
_SUFFIX: Final = os.environ.get("SYSWEAVE_TOPIC_SUFFIX", "")

TOPIC_EVENTS: Final = "sysweave.events.v1" + _SUFFIX  # agent batches (codec envelopes), key = trace key
TOPIC_CONTROL: Final = "sysweave.control.v1" + _SUFFIX  # sampling decisions back to agents, key = host id
TOPIC_TRACES: Final = "sysweave.traces.v1" + _SUFFIX  # assembled traces and updates, key = trace id (hex)
TOPIC_VALIDATION: Final = "sysweave.validation.v1" + _SUFFIX  # validation requests, key = request id
TOPIC_DEAD_LETTER: Final = "sysweave.deadletter.v1" + _SUFFIX  # poison messages with the reason in headers

ALL_TOPICS: Final = (TOPIC_EVENTS, TOPIC_CONTROL, TOPIC_TRACES, TOPIC_VALIDATION, TOPIC_DEAD_LETTER)

_HOUR_MS: Final = 3_600_000


@dataclass(frozen=True, slots=True)
class TopicSpec:
    """How ``sysweave topics create`` makes a topic: its name, partitions (None: the operator's
    ``--partitions``, sized from events/s, see docs/operations.md) and topic-level configuration."""

    name: str
    partitions: int | None
    config: tuple[tuple[str, str], ...]


# Retention: raw events only until the workers have assembled them (a day to replay after an outage); assembled
# traces until the validator has stored them; poison messages long enough for someone to look.
TOPIC_SPECS: Final = (
    TopicSpec(TOPIC_EVENTS, None, (("retention.ms", str(24 * _HOUR_MS)), ("compression.type", "producer"))),
    TopicSpec(TOPIC_CONTROL, None, (("retention.ms", str(1 * _HOUR_MS)),)),
    TopicSpec(TOPIC_TRACES, None, (("retention.ms", str(72 * _HOUR_MS)), ("compression.type", "producer"))),
    TopicSpec(TOPIC_VALIDATION, None, (("retention.ms", str(168 * _HOUR_MS)),)),
    TopicSpec(TOPIC_DEAD_LETTER, 1, (("retention.ms", str(336 * _HOUR_MS)),)),
)
HEADER_LABEL: Final = "sysweave.label"  # TOPIC_TRACES header: the trace's label (UTF-8), absent when none


def trace_key(host_id: str, root_pid: int) -> bytes:
    """Partition key of a traced process tree's events. Example: trace_key("h1", 42) == b"h1/42"."""
    return f"{host_id}/{root_pid}".encode()


def label_of_key(key: bytes, hosts: Iterable[str]) -> str:
    """The trace label a TOPIC_EVENTS key carries: "" for a process-tree key — "<host>/<pid>" with <host> one
    of the trace's hosts — and the key itself (UTF-8) otherwise. A label spelled like a tree key of one of the
    trace's own hosts cannot be told apart and counts as none.
    Example: label_of_key(b"h1/42", ["h1"]) == "" and label_of_key(b"job-7", ["h1"]) == "job-7"."""
    text = key.decode("utf-8", "replace")
    host, sep, pid = text.rpartition("/")
    return "" if sep and pid.isdigit() and host in set(hosts) else text


def dead_letter_headers(reason: str, source_topic: str, partition: int, offset: int) -> list[tuple[str, bytes]]:
    """Kafka headers attached to a dead-lettered message: why, and where it came from (for replay)."""
    return [
        ("sysweave.reason", reason.encode()[:4096]),
        ("sysweave.source", f"{source_topic}/{partition}@{offset}".encode()),
    ]
