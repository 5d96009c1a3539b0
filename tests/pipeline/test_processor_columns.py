"""The stream worker's output for the same input, decoded by columns (``codec.decode_batch``, what the worker
runs now) and by rows (``codec.decode_batch_rows``, what it ran before): the same messages, and every emitted
trace the same events with the same stamps, edges and clock corrections."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgpack
import pytest

from sysweave.schemas import codec, topics
from sysweave.schemas.events import Event
from sysweave.streams.processor import Incoming, Outbound, StreamProcessor, WorkerConfig

from .recorded import recorded_events
from .test_fast_path import bench_like


@dataclass
class Handle:
    def ack(self) -> bool:
        return True


def _worker_output(batches: list[tuple[bytes, list[Event]]], decode: Callable[[bytes], codec.Batch],
                   monkeypatch: pytest.MonkeyPatch) -> list[Outbound]:
    """Every message one worker sends for ``batches`` (key, events), 50 events per Kafka message."""
    with monkeypatch.context() as m:
        m.setattr(codec, "decode_batch", decode)
        proc = StreamProcessor(WorkerConfig(grace_s=1.0, join_wait_s=0.0))
        out: list[Outbound] = []
        offset = 0
        for key, events in batches:
            for i in range(0, len(events), 50):
                value = codec.encode_batch(codec.Batch(7, offset, 0, tuple(events[i:i + 50])))
                out += proc.ingest(Incoming(key, value, (), 0, offset, Handle()), 0.0).sends
                offset += 1
        out += proc.emit_closed(10.0, 1_795_000_000_000_000_000).sends
        out += proc.host_reports()
    return out


def _comparable(m: Outbound) -> tuple[Any, ...]:
    """A message without the one value that depends on when it was encoded (a trace's created_wall_ns)."""
    if m.topic != topics.TOPIC_TRACES:
        return (m.topic, m.key, m.value, m.headers)
    env = msgpack.unpackb(m.value, raw=False)
    return (m.topic, m.key, m.headers, env[:3], env[4])


@pytest.mark.parametrize("shape", ["recorded", "bench"])
def test_the_worker_emits_the_same_traces_with_columnar_decoding(shape: str, monkeypatch: pytest.MonkeyPatch) -> None:
    if shape == "recorded":  # two hosts, pipe, fork, TCP, lost events, clock offset: every step does something
        rec = recorded_events()
        batches = [(b"run/1", rec.by_host["A"]), (b"run/1", rec.by_host["B"])]
    else:
        batches = [(b"bench/1", bench_like(3000, threads=3))]
    rows = _worker_output(batches, codec.decode_batch_rows, monkeypatch)
    cols = _worker_output(batches, codec.decode_batch, monkeypatch)
    traces = [m for m in cols if m.topic == topics.TOPIC_TRACES]
    assert len(traces) == 1 and len(codec.decode_batch_rows(traces[0].value).events) > 0
    assert [_comparable(m) for m in cols] == [_comparable(m) for m in rows]
