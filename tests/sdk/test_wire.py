"""The SDK's hand-written msgpack is exactly what the schema codec reads; the receiver's decoder survives any bytes."""

from __future__ import annotations

import struct
from typing import Any

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.contract.strategies import event_strategy

from sysweave import sdk
from sysweave.agents.sdk_server import MAX_DATAGRAM, DatagramStamp, SdkDatagramError, datagram_event
from sysweave.schemas import codec
from sysweave.schemas.events import ComputeBlock, EventHeader, LostEvents, Mark, SyscallSpan, TranspilerDecision

NOW = 5_000_000_000_000


def stamp(pid: int = 4242, seq: int = 1) -> DatagramStamp:
    return DatagramStamp("host-a", pid, bytes(15) + bytes([seq]), seq, 1_700_000_000_000_000_000, NOW)


def block_datagram(name: str, op: str = "", elements: int = 0, symbol: str = "", decision: str = "",
                   attrs: dict[str, Any] | None = None, tid: int = 7, t0: int = 1000, dur: int = 50) -> bytes:
    """What ``with compute_block(...)`` sends, built by the SDK's own encoder pieces."""
    b = sdk._Block(name, op, elements, symbol, decision, attrs)
    return sdk._PREFIX[sdk.KIND_COMPUTE] + sdk._TIMES.pack(0xCE, tid, 0xCF, t0, 0, 0xCF, dur, 0, 0) + b._fields(elements)


texts = st.text(max_size=300)
attr_values = st.one_of(st.none(), st.booleans(), st.integers(-(2**63), 2**64 - 1), st.text(max_size=40),
                        st.binary(max_size=40), st.lists(st.integers(-(2**63), 2**64 - 1), max_size=4),
                        st.lists(st.text(max_size=10), min_size=1, max_size=4))
attr_maps = st.dictionaries(st.text(min_size=1, max_size=12), attr_values, max_size=20)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(name=texts, op=texts, elements=st.integers(0, 2**64 - 1), symbol=texts, decision=texts, attrs=attr_maps,
       tid=st.integers(1, 2**32 - 1), t0=st.integers(1, 2**62), dur=st.integers(0, 2**40))
def test_sdk_compute_block_is_what_the_codec_reads(name: str, op: str, elements: int, symbol: str, decision: str,
                                                     attrs: dict[str, Any], tid: int, t0: int, dur: int) -> None:
    ev = codec.decode_event(block_datagram(name, op, elements, symbol, decision, attrs, tid, t0, dur))
    assert isinstance(ev, ComputeBlock)
    assert (ev.name, ev.op, ev.elements, ev.symbol, ev.source, ev.decision_id) == (name, op, elements, symbol, "sdk", decision)
    assert (ev.h.tid, ev.h.mono_ns, ev.h.duration_ns, ev.h.pid, ev.h.event_id) == (tid, t0, dur, 0, bytes(16))
    want = {k: (tuple(v) if isinstance(v, list) else v) for k, v in attrs.items()}
    assert ev.attrs == want


@settings(max_examples=200)
@given(did=texts, kind=texts, chosen=texts, loc=texts, target=texts, alts=st.lists(texts, max_size=20), reason=texts,
       attrs=attr_maps)
def test_sdk_decision_and_mark_are_what_the_codec_reads(did: str, kind: str, chosen: str, loc: str, target: str,
                                                        alts: list[str], reason: str, attrs: dict[str, Any]) -> None:
    sent: list[bytes] = []

    class Capture:
        def send(self, data: bytes) -> None:
            sent.append(data)

    old = sdk._transport
    sdk._transport = Capture()  # type: ignore[assignment]
    try:
        sdk.transpiler_decision(did, kind, chosen, source_location=loc, target_symbol=target, alternatives=tuple(alts),
                                reason=reason, attrs=attrs)
        sdk.mark(kind or "m", **attrs)
    finally:
        sdk._transport = old
    d, m = (codec.decode_event(x) for x in sent)
    assert isinstance(d, TranspilerDecision) and isinstance(m, Mark)
    assert (d.decision_id, d.kind, d.chosen, d.source_location, d.target_symbol, d.alternatives, d.reason, d.source) == \
        (did, kind, chosen, loc, target, tuple(alts), reason, "sdk")
    assert m.name == (kind or "m") and set(m.attrs) == set(attrs)


def test_attribute_values_outside_the_wire_types_travel_as_text() -> None:
    ev = codec.decode_event(block_datagram("b", attrs={"f": 1.5, "big": 2**70, "mixed": [1, "a"], "obj": object,
                                                        "many": list(range(3))}))
    assert isinstance(ev, ComputeBlock)
    assert ev.attrs["f"] == "1.5" and ev.attrs["big"] == str(2**70) and ev.attrs["mixed"] == ("1", "a")
    assert ev.attrs["obj"] == "<class 'object'>" and ev.attrs["many"] == (0, 1, 2)


def test_more_attributes_than_the_codec_allows_are_cut_and_counted() -> None:
    ev = codec.decode_event(block_datagram("b", attrs={f"k{i}": i for i in range(100)}))
    assert isinstance(ev, ComputeBlock)
    assert len(ev.attrs) == 64 and ev.attrs["sdk.attrs_cut"] == 100 - 63


def test_receiver_fills_the_header_from_the_kernel_and_its_clock() -> None:
    ev = datagram_event(block_datagram("gemm", "gemm", 64, "mm", "D1", tid=0, t0=1_000, dur=500), stamp(pid=99))
    assert isinstance(ev, ComputeBlock)
    h = ev.h
    assert (h.pid, h.tid, h.host_id, h.mono_ns, h.duration_ns) == (99, 99, "host-a", 1_000, 500)  # tid 0 -> main thread
    assert h.wall_ns == 1_000 + 1_700_000_000_000_000_000 and h.event_id == bytes(15) + b"\x01"
    assert h.stamp.lamport == 1 and ev.source == "sdk"


@pytest.mark.parametrize("data, reason, says", [
    (b"", "sdk_malformed", "not valid msgpack"),
    (b"\x92\x01\x90", "sdk_malformed", "event array"),
    (msgpack.packb([2, [5]]), "sdk_malformed", "unsupported schema version"),
    (codec.encode_event(SyscallSpan(EventHeader(bytes(16), "", 0, 1, 10, 0), 0, "read", 0)), "sdk_malformed",
     "not an SDK event"),
    (block_datagram("b", t0=NOW + 20 * 10**9), "sdk_malformed", "not CLOCK_MONOTONIC"),
    (block_datagram("b", t0=0), "sdk_malformed", "not CLOCK_MONOTONIC"),
    (bytes(MAX_DATAGRAM + 1), "sdk_oversized", "exceeds"),
])
def test_bad_datagrams_name_their_problem(data: bytes, reason: str, says: str) -> None:
    with pytest.raises(SdkDatagramError) as err:
        datagram_event(data, stamp())
    assert err.value.reason == reason and says in str(err.value)


def test_negative_elements_and_counts_are_rejected() -> None:
    raw = msgpack.unpackb(block_datagram("b"))
    raw[1][12] = -5  # elements
    with pytest.raises(SdkDatagramError, match="elements"):
        datagram_event(msgpack.packb(raw, use_bin_type=True), stamp())
    lost = codec.encode_event(LostEvents(EventHeader(bytes(16), "", 0, 1, 10, 0), "sdk_sender", -1))
    with pytest.raises(SdkDatagramError, match="count"):
        datagram_event(lost, stamp())


@settings(max_examples=3000, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=400))
def test_random_bytes_raise_only_the_counted_error(data: bytes) -> None:
    try:
        datagram_event(data, stamp())
    except SdkDatagramError as exc:
        assert exc.reason in ("sdk_malformed", "sdk_oversized")


@settings(max_examples=1500, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_mutated_datagrams_raise_only_the_counted_error(data: st.DataObject) -> None:
    good = bytearray(block_datagram("matmul", "gemm", 1 << 20, "mm_kernel", "D17", {"dtype": "f32", "n": [1, 2]}))
    for _ in range(data.draw(st.integers(1, 6))):
        i = data.draw(st.integers(0, len(good) - 1))
        good[i] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(good)))
    try:
        datagram_event(bytes(good[:cut]), stamp())
    except SdkDatagramError:
        pass


@settings(max_examples=200)
@given(event_strategy(ComputeBlock) | event_strategy(TranspilerDecision) | event_strategy(Mark))
def test_codec_round_trip_of_the_sdk_event_types(ev: Any) -> None:
    assert codec.decode_event(codec.encode_event(ev)) == ev
    batch = codec.Batch(1, 2, 3, (ev,))
    assert codec.decode_batch(codec.encode_batch(batch)) == batch


def test_datagram_layout_is_the_documented_one() -> None:
    """docs/sdk.md's byte-by-byte example, kept honest."""
    data = block_datagram("mm", "gemm", 5, "", "", None, tid=7, t0=1000, dur=50)
    assert data[:4] == b"\x92\x01\xdc\x00" and data[4] == 17 and data[5] == 5  # [1, [kind=5, ... 17 elements
    assert data[6:8] == b"\xc4\x10" and data[8:24] == bytes(16) and data[24:26] == b"\xa0\x00"
    assert data[26:31] == b"\xce" + struct.pack(">I", 7) and data[31:40] == b"\xcf" + struct.pack(">Q", 1000)
    assert data[40:41] == b"\x00" and data[41:50] == b"\xcf" + struct.pack(">Q", 50) and data[50:52] == b"\x00\x00"
    assert data[52:] == b"\xa2mm" + b"\xa4gemm" + b"\xcf" + struct.pack(">Q", 5) + b"\xa0" + b"\xa3sdk" + b"\xa0" + b"\x80"
