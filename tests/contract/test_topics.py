"""Every topic message has one type in ``schemas.topics`` that encodes and decodes it: round trips, the
operation-class enum, and refusals that name what was wrong."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sysweave.schemas import codec, topics
from sysweave.schemas.topics import (
    ControlDecision,
    DeadLetter,
    EventBatchMessage,
    MessageError,
    OperationClass,
    TraceMessage,
    ValidationRequest,
)

from .strategies import batches, text

pair_lists = st.lists(st.tuples(st.sampled_from([topics.HEADER_JOINED, topics.HEADER_LABEL, "x"]), st.binary()))


@given(st.binary(min_size=1, max_size=40), batches, st.none() | st.binary(max_size=20), st.booleans())
def test_event_batches_round_trip_with_headers_as_pairs_or_a_dict(key: bytes, batch: codec.Batch,
                                                                  joined: bytes | None, as_dict: bool) -> None:
    m = EventBatchMessage(key, batch, joined)
    headers = dict(m.headers()) if as_dict else m.headers()
    assert EventBatchMessage.decode(m.key, m.encode(), headers) == m


@given(st.binary(min_size=16, max_size=16), text, batches)
def test_trace_messages_round_trip(trace_id: bytes, label: str, batch: codec.Batch) -> None:
    m = TraceMessage(trace_id, label, batch)
    got = TraceMessage.decode(m.key(), m.encode(), m.headers())
    assert got == m and got.late_events == batch.sequence
    assert (topics.HEADER_LABEL in dict(m.headers())) == bool(label)


@pytest.mark.parametrize("key", [None, b"", b"zz" * 16, b"ab" * 15, "é".encode() * 16])
def test_a_trace_message_whose_key_is_not_a_trace_id_is_refused(key: bytes | None) -> None:
    with pytest.raises(MessageError, match=r"32-hex-digit trace id"):
        TraceMessage.decode(key, codec.encode_batch(codec.Batch(0, 0, 0, ())))


@given(pair_lists)
def test_header_map_takes_pairs_dicts_and_none(pairs: list[tuple[str, bytes]]) -> None:
    assert topics.header_map(pairs) == topics.header_map(dict(pairs)) == dict(pairs)
    assert topics.header_map(None) == {}


@given(text, st.sampled_from([topics.TOPIC_EVENTS, "a/b"]), st.integers(0, 999), st.integers(0, 2**40))
def test_dead_letters_name_why_and_where(reason: str, topic: str, partition: int, offset: int) -> None:
    d = DeadLetter(reason, topic, partition, offset)
    got = DeadLetter.decode(d.headers())
    assert (got.source_topic, got.partition, got.offset) == (topic, partition, offset)
    assert got.reason == reason.encode()[:4096].decode("utf-8", "replace")
    with pytest.raises(MessageError, match=r"sysweave\.source"):
        DeadLetter.decode([("sysweave.reason", b"x")])


@given(st.sampled_from(list(OperationClass)), st.integers(0, 2**40), st.floats(0, 1))
def test_control_decisions_carry_the_class_as_its_enum(op: OperationClass, ns: int, fraction: float) -> None:
    d = ControlDecision("h1", ns, fraction, op)
    got = ControlDecision.decode(d.encode())
    assert got == d and got.cls is op
    assert (b'"class"' in d.encode()) == (op is not OperationClass.SYSCALL)


@pytest.mark.parametrize("raw, field", [
    (b'{"host_id": "h", "threshold_ns": 5, "class": "disk"}', "class"),
    (b'{"host_id": "h", "threshold_ns": -5}', "threshold_ns"),
    (b'{"host_id": "h", "threshold_ns": "5"}', "threshold_ns"),
    (b'{"threshold_ns": 5}', "host_id"),
    (b"not json", "not JSON"),
])
def test_a_bad_control_decision_names_the_field(raw: bytes, field: str) -> None:
    with pytest.raises(MessageError, match=field):
        ControlDecision.decode(raw)


def test_operation_classes_are_the_strings_on_the_wire() -> None:
    assert [c.value for c in OperationClass] == ["syscall", "compute", "gpu_kernel", "memcpy"]
    assert OperationClass("gpu_kernel") is OperationClass.GPU_KERNEL


def test_validation_requests_round_trip_and_refuse_garbage() -> None:
    req = ValidationRequest("job-faithful", "job-broken", request_id="r1", original_label="a")
    assert ValidationRequest.decode(req.encode()) == req and req.key() == b"r1"
    for raw, why in ((b'{"original_trace_id": 3}', "original_trace_id must be a string"), (b"[]", "JSON object"),
                     (b'{"original_trace_id": "a", "transpiled_trace_id": "b", "version": 2}', "version 2")):
        with pytest.raises(MessageError, match=why):
            ValidationRequest.decode(raw)
