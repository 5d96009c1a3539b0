"""The stream worker's state and steps (``streams.processor.StreamProcessor``, pure): what the Faust glue sends
and acknowledges for each input, with no broker."""

from __future__ import annotations

from dataclasses import dataclass

from sysweave.schemas import codec, topics
from sysweave.schemas.events import (
    CausalStamp,
    EventHeader,
    ProcessEvent,
    ProcessEventType,
    SyscallAggregate,
    SyscallSpan,
    make_event_id,
)
from sysweave.schemas.topics import ControlDecision, DeadLetter, HostCounts, TraceMessage
from sysweave.streams.processor import AckLedger, Incoming, StreamProcessor, WorkerConfig


@dataclass
class Handle:
    name: str
    acked: int = 0

    def ack(self) -> bool:
        self.acked += 1
        return True


def _h(seq: int, pid: int = 42, mono: int = 0, host: str = "h1") -> EventHeader:
    return EventHeader(make_event_id(7, seq), host, pid, pid, 1_000 + mono, 1_700_000_000_000_000_000 + mono, 10,
                       CausalStamp(0, 0))


def _tree(start: int = 0) -> list[object]:
    return [ProcessEvent(_h(start + 1), ProcessEventType.EXEC, filename="/bin/true", argv=("true",), comm="true"),
            SyscallSpan(_h(start + 2, mono=5), 0, "read", 3),
            SyscallAggregate(_h(start + 3, mono=6), 0, "read", 12, 0, 400_000, (0,) * 14 + (4, 4, 4)),
            ProcessEvent(_h(start + 4, mono=9), ProcessEventType.EXIT, exit_code=0)]


def _msg(events: list[object], offset: int, key: bytes = b"h1/42", headers: object = None) -> Incoming:
    value = codec.encode_batch(codec.Batch(7, offset, 0, tuple(events)))  # type: ignore[arg-type]
    return Incoming(key, value, headers, 0, offset, Handle(f"m{offset}"))  # type: ignore[arg-type]


def test_a_closed_trace_is_emitted_once_and_only_then_its_messages_are_acked() -> None:
    proc = StreamProcessor(WorkerConfig(grace_s=1.0, join_wait_s=0.0))
    first, second = _msg(_tree()[:2], 0), _msg(_tree()[2:], 1)
    assert proc.ingest(first, 0.0).acks == [] and proc.ingest(second, 0.1).acks == []
    assert proc.emit_closed(0.5, 0).sends == []  # inside the grace period
    fx = proc.emit_closed(2.0, 0)
    traces = [m for m in fx.sends if m.topic == topics.TOPIC_TRACES]
    assert len(traces) == 1 and fx.acks == [first.handle, second.handle]
    got = TraceMessage.decode(traces[0].key, traces[0].value, traces[0].headers)
    assert {e.h.event_id for e in got.batch.events} >= {e.h.event_id for e in _tree()}  # type: ignore[attr-defined]
    assert got.label == "" and got.late_events == 0
    assert proc.counters()["traces_emitted"] == 1 and proc.counters()["batches"] == 2


def test_a_labelled_key_travels_as_the_label_header() -> None:
    proc = StreamProcessor(WorkerConfig(grace_s=0.0, join_wait_s=0.0))
    proc.ingest(_msg(_tree(), 0, key=b"job-7"), 0.0)
    (m,) = [m for m in proc.emit_closed(1.0, 0).sends if m.topic == topics.TOPIC_TRACES]
    assert dict(m.headers) == {topics.HEADER_LABEL: b"job-7"}
    assert TraceMessage.decode(m.key, m.value, m.headers).label == "job-7"


def test_a_bad_batch_is_dead_lettered_with_the_reason_and_acked_at_once() -> None:
    proc = StreamProcessor(WorkerConfig())
    bad = Incoming(b"h1/42", b"\xc1 not msgpack", None, 3, 99, Handle("bad"))
    fx = proc.ingest(bad, 0.0)
    (m,) = fx.sends
    assert m.topic == topics.TOPIC_DEAD_LETTER and m.value == bad.value and fx.acks == [bad.handle]
    d = DeadLetter.decode(m.headers)
    assert (d.source_topic, d.partition, d.offset) == (topics.TOPIC_EVENTS, 3, 99) and "msgpack" in d.reason
    assert proc.stats.dead_lettered == 1


def test_headers_as_a_dict_or_as_pairs_mean_the_same() -> None:
    for headers in ({topics.HEADER_JOINED: b"h2/1"}, [(topics.HEADER_JOINED, b"h2/1")]):
        proc = StreamProcessor(WorkerConfig())
        proc.ingest(_msg(_tree(), 0, headers=headers), 0.0)
        assert proc.host_reports() == []  # forwarded (joined) events are not counted again for sampling


def test_host_reports_feed_the_authority_which_decides_once() -> None:
    a, b = (StreamProcessor(WorkerConfig(worker_id=w, target_spans_per_s=1.0, control_interval_s=1.0))
            for w in ("w1", "w2"))
    a.ingest(_msg(_tree(), 0), 0.0)
    b.ingest(_msg(_tree(10), 0), 0.0)
    reports = a.host_reports() + b.host_reports()
    assert [HostCounts.decode(r.value).worker for r in reports] == ["w1", "w2"]
    assert all(r.topic == topics.TOPIC_SAMPLING and r.key == b"h1" for r in reports)
    for r in reports:
        a.sampling_report(r.value)
    a.sampling_report(b"{}")  # malformed: counted, skipped
    (d,) = a.decide()
    decision = ControlDecision.decode(d.value)
    assert d.topic == topics.TOPIC_CONTROL and d.key == b"h1" and decision.fraction < 1.0
    assert a.stats.malformed_reports == 1 and a.stats.decisions == 1


def test_the_ledger_releases_only_the_head_of_each_partition() -> None:
    ledger: AckLedger[str] = AckLedger()
    ledger.track(b"a", 0, 1, "a1")
    ledger.track(b"b", 0, 2, "b2")
    ledger.track(b"a", 0, 3, "a3")
    assert ledger.done(b"b") == []  # a1 still open before it
    assert ledger.done(b"a") == ["a1", "b2", "a3"]


def _on(partition: int, events: list[object], offset: int, key: bytes) -> Incoming:
    m = _msg(events, offset, key=key)
    return Incoming(m.key, m.value, m.headers, partition, offset, m.handle)


def test_a_revoked_partition_leaves_its_open_traces_to_the_new_owner_unacked() -> None:
    """A rebalance never waits for open traces (Faust's wait_empty stalled on them): the revoked partition's open
    trace is dropped without an ack — nothing is committed past it, so its new owner reads it again, whole — its
    late batches are ignored until it is assigned back, and the other partition's trace is emitted as before."""
    proc = StreamProcessor(WorkerConfig(grace_s=0.0, join_wait_s=0.0))
    moved, kept = _on(1, _tree()[:2], 0, b"h1/1"), _on(2, _tree(10), 0, b"h1/2")
    proc.ingest(moved, 0.0)
    proc.ingest(kept, 0.0)
    assert proc.revoke([1]) == 1
    late = _on(1, _tree()[2:], 1, b"h1/1")
    assert proc.ingest(late, 0.1).acks == []
    fx = proc.emit_closed(1.0, 0)
    keys = [TraceMessage.decode(m.key, m.value, m.headers).batch.events[0].h.event_id
            for m in fx.sends if m.topic == topics.TOPIC_TRACES]
    assert len(keys) == 1 and fx.acks == [kept.handle] and moved.handle.acked == late.handle.acked == 0  # type: ignore[attr-defined]
    assert proc.counters()["traces_revoked"] == 1 and proc.counters()["batches_not_owned"] == 1
    proc.assign([1])  # given back: read again from the committed offset, the trace is whole
    proc.ingest(_on(1, _tree()[:2], 0, b"h1/1"), 2.0)
    fx = proc.ingest(_on(1, _tree()[2:], 1, b"h1/1"), 2.0)
    fx = proc.emit_closed(3.0, 0)
    (m,) = [m for m in fx.sends if m.topic == topics.TOPIC_TRACES]
    got = TraceMessage.decode(m.key, m.value, m.headers)
    assert {e.h.event_id for e in got.batch.events} >= {e.h.event_id for e in _tree()}  # type: ignore[attr-defined]
    assert len(fx.acks) == 2 and proc.buffer.duplicates == 0
