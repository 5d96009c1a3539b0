"""Wire codec: round trips for every event type, and a decoder that only ever raises DecodeError."""

from __future__ import annotations

import random

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sysweave.schemas import codec
from sysweave.schemas.events import EVENT_TYPES, CausalStamp, EventHeader, SyscallSpan, make_event_id

from .strategies import batches, event_strategy


@pytest.mark.parametrize("cls", list(EVENT_TYPES.values()), ids=lambda c: c.__name__)
@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_every_event_type_round_trips(cls: type, data: st.DataObject) -> None:
    event = data.draw(event_strategy(cls))
    assert codec.decode_event(codec.encode_event(event)) == event


@given(batches)
@settings(max_examples=300)
def test_batches_round_trip(batch: codec.Batch) -> None:
    assert codec.decode_batch(codec.encode_batch(batch)) == batch


def _sample_event(i: int = 1) -> SyscallSpan:
    h = EventHeader(make_event_id(7, i), "h1", 42, 43, 1000, 1_700_000_000_000_001_000, 5300, CausalStamp(7, 9))
    return SyscallSpan(h, 257, "openat", -2, {"path": "/nope", "flags": 524288}, None, 0, 4)


def test_encoding_is_compact() -> None:
    one = codec.encode_batch(codec.Batch(1, 1, 1, (_sample_event(),)))
    many = codec.encode_batch(codec.Batch(1, 1, 1, tuple(_sample_event(i) for i in range(1000))))
    assert len(one) < 110
    assert len(many) / 1000 < 100  # positional arrays, no field names on the wire


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "not valid msgpack"),
        (b"\xc1", "not valid msgpack"),
        (msgpack.packb([1, 2]), "5-element envelope"),
        (msgpack.packb([9, 1, 1, 1, []]), "unsupported schema version 9"),
        (msgpack.packb([1, "p", 1, 1, []]), "batch.producer_id: expected an integer"),
        (msgpack.packb([1, 1, 1, 1, [[99]]]), "batch.events[0][0]: unknown event kind 99"),
        (msgpack.packb([1, 1, 1, 1, [[1, b"x"]]]), "batch.events[0]: a SyscallSpan has"),
        (msgpack.packb([1, 1, 1, 1, {}]), "batch.events: expected an array of events"),
    ],
)
def test_bad_input_is_named(data: bytes, message: str) -> None:
    with pytest.raises(codec.DecodeError, match=message.replace("[", r"\[").replace("]", r"\]")):
        codec.decode_batch(data)


def test_wrong_field_type_names_the_field() -> None:
    wire = codec.event_to_wire(_sample_event())
    wire[3] = "forty-two"  # pid
    with pytest.raises(codec.DecodeError, match=r"batch\.events\[0\]\.pid: expected an integer, got str"):
        codec.decode_batch(msgpack.packb([1, 1, 1, 1, [wire]], use_bin_type=True))


def test_oversized_string_is_rejected() -> None:
    wire = codec.event_to_wire(_sample_event())
    wire[11] = "x" * (codec.MAX_STR + 1)  # name
    with pytest.raises(codec.DecodeError, match="exceed"):
        codec.decode_batch(msgpack.packb([1, 1, 1, 1, [wire]], use_bin_type=True))


def _assert_decodes_or_rejects(data: bytes) -> None:
    try:
        codec.decode_batch(data)
    except codec.DecodeError:
        pass


@given(st.binary(max_size=512))
@settings(max_examples=3000)
def test_fuzz_random_bytes(data: bytes) -> None:
    _assert_decodes_or_rejects(data)


@given(batches, st.data())
@settings(max_examples=2000, suppress_health_check=[HealthCheck.too_slow])
def test_fuzz_mutated_valid_batches(batch: codec.Batch, data: st.DataObject) -> None:
    raw = bytearray(codec.encode_batch(batch))
    for _ in range(data.draw(st.integers(1, 4))):
        op = data.draw(st.sampled_from(["flip", "cut", "insert"]))
        pos = data.draw(st.integers(0, max(len(raw) - 1, 0)))
        if op == "flip" and raw:
            raw[pos] ^= 1 << data.draw(st.integers(0, 7))
        elif op == "cut":
            del raw[pos:]
        else:
            raw[pos:pos] = data.draw(st.binary(min_size=1, max_size=8))
    _assert_decodes_or_rejects(bytes(raw))


def mutation_fuzz(n: int, seed: int) -> dict[str, int]:
    """A fast mutation fuzzer over valid batches (no hypothesis overhead): returns outcome counts."""
    rng = random.Random(seed)
    seeds = [codec.encode_batch(codec.Batch(1, i, i, tuple(_sample_event(j) for j in range(i % 4 + 1))))
             for i in range(16)]
    counts = {"decoded": 0, "rejected": 0}
    for _ in range(n):
        raw = bytearray(rng.choice(seeds))
        for _ in range(rng.randint(1, 6)):
            r = rng.random()
            pos = rng.randrange(len(raw)) if raw else 0
            if r < 0.5 and raw:
                raw[pos] = rng.randrange(256)
            elif r < 0.7:
                del raw[pos:]
            elif r < 0.9:
                raw[pos:pos] = rng.randbytes(rng.randint(1, 9))
            else:
                raw = bytearray(rng.randbytes(rng.randint(0, 64)))
        try:
            codec.decode_batch(bytes(raw))
            counts["decoded"] += 1
        except codec.DecodeError:
            counts["rejected"] += 1
    return counts


def test_fuzz_mutations_quick() -> None:
    counts = mutation_fuzz(20_000, seed=1)
    assert sum(counts.values()) == 20_000


@pytest.mark.slow
def test_fuzz_one_million_inputs() -> None:
    """The marathon: 1,000,000 mutated inputs; any exception other than DecodeError fails the test."""
    counts = mutation_fuzz(1_000_000, seed=20261128)
    print(f"1,000,000 fuzz inputs: {counts}")
    assert sum(counts.values()) == 1_000_000
