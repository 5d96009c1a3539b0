"""Compute blocks, decisions and marks in every output: rows (both stores' column map), Perfetto, OTLP, the text
trace; and the round trip through the embedded store."""

from __future__ import annotations

import json
from pathlib import Path

from sysweave.cli.render import LineStyle, event_json, layer_line
from sysweave.schemas import rows
from sysweave.schemas.events import (
    CausalStamp,
    ComputeBlock,
    EventHeader,
    Mark,
    ProcessSpan,
    SyscallSpan,
    TranspilerDecision,
    UnifiedTrace,
)
from sysweave.validator.export.otlp import to_readable_spans
from sysweave.validator.export.perfetto import to_chrome_trace


def h(i: int, tid: int, mono: int, dur: int = 0) -> EventHeader:
    return EventHeader(bytes([i]) * 16, "host-a", 100, tid, mono, 1_700_000_000_000_000_000 + mono, dur, CausalStamp(i, 0))


BLOCK = ComputeBlock(h(1, 101, 1_000, 5_000), "matmul", "gemm", 4096, "mm_kernel", "sdk", "D1", {"dtype": "f32", "n": (1, 2)})
INSIDE = SyscallSpan(h(2, 101, 2_000, 100), 1, "write", 5)
DECISION = TranspilerDecision(h(3, 100, 500), "D1", "mm.py:3", "mm_kernel", "loop-vectorised", "simd x8",
                              ("scalar",), "no dependency", "log", {"width": 8})
MARK = Mark(h(4, 101, 7_000), "epoch", {"n": 3, "raw": b"\x00"})


def trace() -> UnifiedTrace:
    t = UnifiedTrace(b"\x07" * 16)
    t.processes[("host-a", 100)] = ProcessSpan("host-a", 100, argv=("mm",), start_wall_ns=1_700_000_000_000_000_000,
                                               end_wall_ns=1_700_000_000_000_010_000,
                                               events=[DECISION, BLOCK, INSIDE, MARK])
    return t


def test_rows_hold_every_field() -> None:
    table, row = rows.event_row("t", BLOCK)
    assert table == "compute_blocks" and (row["op"], row["elements"], row["symbol"], row["decision_id"]) == \
        ("gemm", 4096, "mm_kernel", "D1")
    assert json.loads(row["attrs"]) == {"dtype": "f32", "n": [1, 2]}
    table, row = rows.event_row("t", DECISION)
    assert table == "transpiler_decisions" and row["alternatives"] == ["scalar"] and row["source"] == "log"
    table, row = rows.event_row("t", MARK)
    assert table == "marks" and json.loads(row["attrs"]) == {"n": 3, "raw": {"$hex": "00"}}


def test_perfetto_block_on_its_thread_around_its_syscall_and_instants() -> None:
    evs = to_chrome_trace(trace())["traceEvents"]
    block = next(e for e in evs if e.get("name") == "matmul")
    write = next(e for e in evs if e.get("name") == "write")
    assert block["ph"] == "X" and block["tid"] == write["tid"] == 101
    assert block["ts"] <= write["ts"] and write["ts"] + write["dur"] <= block["ts"] + block["dur"]
    assert block["args"]["op"] == "gemm" and block["args"]["elements"] == 4096
    instants = {e["name"]: e for e in evs if e.get("ph") == "i"}
    assert set(instants) == {"decision D1 loop-vectorised: simd x8", "mark epoch"}
    assert instants["mark epoch"]["tid"] == 101 and instants["decision D1 loop-vectorised: simd x8"]["tid"] == 100


def test_otlp_spans_carry_the_fields_under_their_process() -> None:
    spans = {s.name: s for s in to_readable_spans(trace())}
    proc = spans["mm"]
    block = spans["compute matmul"]
    assert block.parent.span_id == proc.context.span_id
    assert block.attributes["compute.operation"] == "gemm" and block.attributes["compute.elements"] == 4096
    assert list(block.attributes["compute.attrs.n"]) == [1, 2]
    assert block.end_time - block.start_time == 5_000
    assert block.attributes["lamport.clock"] == block.attributes["sysweave.lamport"] == 1
    decision = spans["decision loop-vectorised: simd x8"]
    assert decision.attributes["transpiler.target_symbol"] == "mm_kernel"
    assert list(decision.attributes["transpiler.alternatives"]) == ["scalar"]
    mark = spans["mark epoch"]
    assert mark.attributes["mark.attrs.raw"] == "00" and mark.start_time == mark.end_time


def test_text_and_jsonl_trace_lines() -> None:
    style = LineStyle(show_pid=True)
    assert layer_line(DECISION, style).startswith("[pid   100] ~ decision D1 loop-vectorised: simd x8 (over scalar)")
    assert "~ mark epoch(n=3, raw=b'\\x00')" in layer_line(MARK, style)
    doc = json.loads(event_json(BLOCK))
    assert (doc["event"], doc["op"], doc["decision_id"], doc["tid"]) == ("ComputeBlock", "gemm", "D1", 101)


def test_embedded_store_round_trip(tmp_path: Path) -> None:
    from sysweave.validator.store.embedded import EmbeddedStore

    store = EmbeddedStore(tmp_path / "store")
    t = trace()
    store.store_trace(t, label="sdk")
    got = store.load_trace(t.trace_id.hex())
    store.close()
    events = sorted(got.processes[("host-a", 100)].events, key=lambda e: e.h.event_id)
    assert [type(e).__name__ for e in events] == ["ComputeBlock", "SyscallSpan", "TranspilerDecision", "Mark"]
    assert events[0] == BLOCK and events[2] == DECISION and events[3] == MARK
