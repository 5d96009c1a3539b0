"""End to end under real eBPF: a Python program using sysweave.sdk and the C example, traced by ``sysweave trace``
into an embedded store: syscalls, compute blocks, decisions and marks on one timeline, under the right process
and thread; the decision log with a bad line."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
SYSWEAVE = [sys.executable, "-m", "sysweave.cli.main"]

pytestmark = [pytest.mark.bpf, pytest.mark.usefixtures("bpf_ready")]

PROGRAM = textwrap.dedent("""
    import os, threading
    from sysweave import sdk

    sdk.mark("start", phase="load")

    @sdk.compute_block("checksum", op="simd", elements=4096)
    def checksum(data):
        fd = os.open("/dev/null", os.O_WRONLY)
        os.write(fd, b"inside-the-block")
        os.close(fd)
        return sum(data) & 0xFFFF

    def worker():
        with sdk.compute_block("thread work", op="loop", elements=3, symbol="thread_work"):
            fd = os.open("/dev/null", os.O_WRONLY)
            os.write(fd, b"thread-write")
            os.close(fd)
        report["tid"] = threading.get_native_id()

    report = {}
    checksum(bytes(range(256)) * 16)
    t = threading.Thread(target=worker)
    t.start(); t.join()
    sdk.transpiler_decision("RT1", "dispatch", "avx2", target_symbol="checksum", alternatives=("sse2", "scalar"),
                            reason="cpu has avx2", attrs={"lanes": 8})
    print(report["tid"], os.getpid(), sdk.stats()["sent"], flush=True)
""")


def query(store: Path, sql: str) -> list[dict[str, Any]]:
    out = subprocess.run([*SYSWEAVE, "query", "--store", str(store), "--format", "json", sql], capture_output=True,
                         text=True, timeout=120, check=True).stdout
    doc = json.loads(out)
    return doc["data"] if isinstance(doc, dict) else doc


def test_python_sdk_program_on_one_timeline(tmp_path: Path) -> None:
    prog = tmp_path / "prog.py"
    prog.write_text(PROGRAM)
    log = tmp_path / "decisions.jsonl"
    log.write_text(json.dumps({"id": "B1", "kind": "loop-vectorised", "chosen": "simd x8", "alternatives": ["scalar"],
                               "source_location": "prog.py:7", "target_symbol": "checksum", "reason": "pure reduction"})
                   + "\n{oops\n" + json.dumps({"id": "B2", "kind": "allocation-elided", "chosen": "stack",
                                               "target_symbol": "thread_work"}) + "\n")
    store = tmp_path / "store"
    res = subprocess.run([*SYSWEAVE, "trace", "-f", "--no-sampling", "--store", str(store), "--decisions", str(log),
                          "-o", str(tmp_path / "trace.txt"), "--", sys.executable, str(prog)],
                         capture_output=True, text=True, timeout=240)
    assert res.returncode == 0, res.stderr
    assert f"{log}:2: not JSON" in res.stderr and "(line skipped)" in res.stderr
    assert "LOST 1 events (decision_log=1)" in (tmp_path / "trace.txt").read_text()
    thread_tid, pid, sent = (int(x) for x in res.stdout.split())
    assert sent == 4  # mark, two blocks, one decision

    trace_id = query(store, "SELECT trace_id FROM traces")[0]["trace_id"]
    where = f"WHERE trace_id = '{trace_id}'"
    blocks = {b["name"]: b for b in query(store, f"SELECT * FROM compute_blocks {where}")}
    assert set(blocks) == {"checksum", "thread work"}
    main, thread = blocks["checksum"], blocks["thread work"]
    assert (int(main["pid"]), int(main["tid"])) == (pid, pid) and (int(thread["pid"]), int(thread["tid"])) == (pid, thread_tid)
    assert (main["op"], int(main["elements"]), main["symbol"], main["source"]) == ("simd", 4096, "checksum", "sdk")

    # the writes made inside each block lie inside it, on the same thread: one timeline
    for block, payload in ((main, "inside-the-block"), (thread, "thread-write")):
        writes = query(store, f"SELECT tid, mono_ns, duration_ns FROM syscall_spans {where} AND name = 'write' "
                              f"AND payload = '{payload}'")
        assert len(writes) == 1, writes
        w = writes[0]
        assert int(w["tid"]) == int(block["tid"])
        assert int(block["mono_ns"]) <= int(w["mono_ns"]) <= int(w["mono_ns"]) + int(w["duration_ns"]) \
            <= int(block["mono_ns"]) + int(block["duration_ns"])
    # Lamport stamps from the pipeline respect the thread's program order
    first_write = query(store, f"SELECT lamport FROM syscall_spans {where} AND payload = 'inside-the-block'")[0]
    assert int(first_write["lamport"]) > 0

    decisions = {d["decision_id"]: d for d in query(store, f"SELECT * FROM transpiler_decisions {where}")}
    assert set(decisions) == {"B1", "B2", "RT1"}
    assert {d["source"] for k, d in decisions.items() if k.startswith("B")} == {"log"}
    rt = decisions["RT1"]
    assert (rt["source"], int(rt["pid"]), rt["alternatives"], json.loads(rt["attrs"])) == \
        ("sdk", pid, ["sse2", "scalar"], {"lanes": 8})
    assert all(int(d["pid"]) == pid for d in decisions.values())
    marks = query(store, f"SELECT name, attrs, pid FROM marks {where}")
    assert [(m["name"], json.loads(m["attrs"]), int(m["pid"])) for m in marks] == [("start", {"phase": "load"}, pid)]
    lost = query(store, f"SELECT source, count, detail FROM lost_events {where} AND source = 'decision_log'")
    assert int(lost[0]["count"]) == 1 and "line 2" in lost[0]["detail"]

    linked = {r["decision_id"]: r for r in query(store, "SELECT * FROM (" + _named("decision-blocks") + ")")}
    assert int(linked["B1"]["blocks"]) == 1 and int(linked["RT1"]["blocks"]) == 1  # both name checksum
    assert int(linked["B2"]["total_ns"]) == int(thread["duration_ns"])


def _named(name: str) -> str:
    from sysweave.validator.store.named_queries import NAMED_QUERIES

    return NAMED_QUERIES[name][1]


def test_c_example_under_sysweave_trace(tmp_path: Path) -> None:
    binary = tmp_path / "sdk_example"
    subprocess.run(["cc", "-O2", "-Wall", "-Werror", "-o", str(binary), str(ROOT / "examples" / "sdk" / "sdk_example.c")],
                   check=True)
    store = tmp_path / "store"
    res = subprocess.run([*SYSWEAVE, "trace", "-f", "--no-sampling", "--store", str(store), "-o",
                          str(tmp_path / "trace.txt"), "--", str(binary)], capture_output=True, text=True, timeout=240)
    assert res.returncode == 0, res.stderr
    assert "LOST" not in (tmp_path / "trace.txt").read_text()
    [block] = query(store, "SELECT * FROM compute_blocks")
    assert (block["name"], block["op"], int(block["elements"]), block["symbol"], block["decision_id"]) == \
        ("vector sum", "simd", 1 << 20, "vector_sum", "C1")
    assert json.loads(block["attrs"]) == {"lang": "c"} and int(block["tid"]) == int(block["pid"])
    [decision] = query(store, "SELECT * FROM transpiler_decisions")
    assert (decision["decision_id"], decision["kind"], decision["alternatives"], int(decision["pid"])) == \
        ("C1", "loop-vectorised", ["scalar"], int(block["pid"]))
    [w] = query(store, "SELECT mono_ns, pid FROM syscall_spans WHERE name = 'openat' AND args LIKE '%/dev/null%'")
    assert int(w["pid"]) == int(block["pid"])
    assert int(block["mono_ns"]) <= int(w["mono_ns"]) <= int(block["mono_ns"]) + int(block["duration_ns"])
