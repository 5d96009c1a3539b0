"""Issue 10's "Done when", end to end: a C program with a hot function and a Python program using the SDK,
traced embedded (``sysweave trace --uprobe --decisions --store``) and distributed (``sysweave agent --uprobe`` →
Kafka → a real Faust worker → ``sysweave validator serve --clickhouse --otlp`` → ClickHouse 18.16 and Jaeger):
system calls, compute blocks and transpiler decisions on one timeline with correct parenting, exact
per-function counts and the seed's compute threshold (50 µs) applied.

The traced command is the Python program; it runs the C program as its child, inside an SDK compute block,
so the C program's uprobe blocks, the SDK's blocks and decisions and every system call belong to one
process tree: one trace.

* The C program (``tests/fixtures/hot_kernel.c``) calls ``hot_kernel`` FAST times with nothing to do and SLOW
  times sleeping (``clock_nanosleep``) and spinning ``SLOW_US`` µs each; the element argument (``n=arg1``) tells
  the two kinds apart: n < 1,000,000 fast, n = 1,000,000 + i the i-th slow call.
* The Python program marks, runs two SDK blocks (main thread, a second thread; each writes a known payload
  to /dev/null and sleeps inside), takes a run-time decision naming ``hot_kernel``, and runs the C program
  inside a third block.
* The decision log (embedded only: ``--decisions`` is a ``sysweave trace`` flag) names ``hot_kernel`` and the
  Python block's symbol.
"""

from __future__ import annotations

import itertools
import json
import os
import pickle
import re
import signal
import socket
import subprocess
import sys
import textwrap
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sysweave.schemas.events import (
    ComputeBlock,
    EdgeKind,
    Event,
    FunctionAggregate,
    Mark,
    ProcessEvent,
    ProcessSpan,
    SyscallAggregate,
    SyscallSpan,
    TranspilerDecision,
    UnifiedTrace,
)

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures"
JAEGER = ROOT / ".local" / "bin" / "jaeger"
SYSWEAVE = [sys.executable, "-m", "sysweave.cli.main"]

FAST, SLOW, SLOW_US = 300, 6, 2000
SLOW_BASE = 1_000_000
THRESHOLD_NS = 50_000  # the seed's SIMD threshold: the default of --compute-us

pytestmark = [pytest.mark.bpf, pytest.mark.usefixtures("bpf_ready")]

PROGRAM = textwrap.dedent("""
    import json, os, subprocess, sys, threading, time
    from sysweave import sdk

    sdk.mark("start", phase="layers")

    @sdk.compute_block("checksum", op="simd", elements=4096, symbol="py_checksum")
    def checksum(data):
        fd = os.open("/dev/null", os.O_WRONLY)
        os.write(fd, b"inside-py-block")
        os.close(fd)
        time.sleep(0.003)
        return sum(data) & 0xFFFF

    report = {"pid": os.getpid()}

    def worker():
        with sdk.compute_block("thread work", op="loop", elements=3, symbol="py_thread_work"):
            fd = os.open("/dev/null", os.O_WRONLY)
            os.write(fd, b"inside-thread-block")
            os.close(fd)
            time.sleep(0.003)
        report["thread_tid"] = threading.get_native_id()

    checksum(bytes(range(256)) * 16)
    t = threading.Thread(target=worker)
    t.start()
    t.join()
    sdk.transpiler_decision("RT1", "dispatch", "avx2", source_location="prog.py:27", target_symbol="hot_kernel",
                            alternatives=("sse2", "scalar"), reason="cpu has avx2", attrs={"lanes": 8})
    with sdk.compute_block("run hot kernel", op="exec", symbol="py_run_hot"):
        out = subprocess.run(sys.argv[1:], capture_output=True, text=True, check=True).stdout
    report["hot_pid"] = int(out.split()[1])
    report["sent"] = sdk.stats()["sent"]
    print(json.dumps(report), flush=True)
""")

DECISION_LOG = [
    {"id": "L1", "kind": "loop-vectorised", "chosen": "simd x8", "alternatives": ["scalar", "simd x4"],
     "reason": "no loop-carried dependency", "source_location": "hot.py:3", "target_symbol": "hot_kernel",
     "attrs": {"width": 8}},
    {"id": "L2", "kind": "allocation-elided", "chosen": "stack", "source_location": "prog.py:7",
     "target_symbol": "py_checksum"},
]


@pytest.fixture(scope="module")
def programs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("layers")
    subprocess.run(["cc", "-O1", "-fno-inline", "-Wall", "-Werror", "-o", str(d / "hot_kernel_app"),
                    str(FIXTURES / "hot_kernel.c")], check=True)
    (d / "prog.py").write_text(PROGRAM)
    (d / "decisions.jsonl").write_text("".join(json.dumps(x) + "\n" for x in DECISION_LOG))
    return d


def command(d: Path) -> list[str]:
    return [sys.executable, str(d / "prog.py"), str(d / "hot_kernel_app"), str(FAST), str(SLOW), str(SLOW_US)]


def uprobe(d: Path) -> str:
    return f"{d / 'hot_kernel_app'}:hot_kernel(n=arg1)"  # a path: the traced command is python, not the C program


def report_of(stdout: str) -> dict[str, int]:
    line = next(x for x in stdout.splitlines() if x.startswith("{"))
    return json.loads(line)  # type: ignore[no-any-return]


def load(target: str, ref: str) -> UnifiedTrace:
    """The stored trace, read back by ``open_store(target).load_trace(ref)`` in a child process (a chdb store
    is one process's at a time; the test process opens none)."""
    code = ("import pickle, sys\nfrom sysweave.validator.store import open_store\n"
            "s = open_store(sys.argv[1], migrate=False)\n"
            "sys.stdout.buffer.write(pickle.dumps(s.load_trace(sys.argv[2])))\ns.close()\n")
    out = subprocess.run([sys.executable, "-c", code, target, ref], capture_output=True, timeout=180)
    assert out.returncode == 0, out.stderr.decode()[-3000:]
    trace = pickle.loads(out.stdout)
    assert isinstance(trace, UnifiedTrace)
    return trace


def named(store_args: list[str], name: str) -> list[dict[str, Any]]:
    res = subprocess.run([*SYSWEAVE, "query", *store_args, "--name", name, "--format", "json"], capture_output=True,
                         text=True, timeout=180)
    assert res.returncode == 0, res.stderr[-3000:]
    doc = json.loads(res.stdout)
    return doc["data"] if isinstance(doc, dict) else doc  # type: ignore[no-any-return]


def _contains(outer: Event, inner: Event) -> bool:
    return outer.h.mono_ns <= inner.h.mono_ns and \
        inner.h.mono_ns + inner.h.duration_ns <= outer.h.mono_ns + outer.h.duration_ns


def check_timeline(trace: UnifiedTrace, rep: dict[str, int], decisions_from_log: bool) -> dict[str, Any]:
    """The facts both modes must show; returns what the mode-specific checks need."""
    pid, thread_tid, hot_pid = rep["pid"], rep["thread_tid"], rep["hot_pid"]
    assert rep["sent"] == 5  # mark, three blocks, one decision
    procs = {p.pid: p for p in trace.processes.values()}
    assert pid in procs and hot_pid in procs, sorted(procs)
    py, hot = procs[pid], procs[hot_pid]
    assert py.host_id == hot.host_id
    # process parenting: the C program is the Python program's child
    assert hot.parent == (py.host_id, pid), hot.parent
    assert hot.argv[:1] and hot.argv[0].endswith("hot_kernel_app") and hot.exit_code == 0
    assert any(a.endswith("prog.py") for a in py.argv) and py.exit_code == 0

    # every event sits under its own process: blocks under the process and thread that ran them
    for p in trace.processes.values():
        assert all(e.h.pid == p.pid and e.h.host_id == p.host_id for e in p.events)

    def of(p: ProcessSpan, cls: type) -> list[Any]:
        return [e for e in p.events if isinstance(e, cls)]

    # --- the SDK's blocks, on the Python process, containing the syscalls made inside them -----------------
    sdk_blocks = {b.name: b for b in of(py, ComputeBlock)}
    assert set(sdk_blocks) == {"checksum", "thread work", "run hot kernel"}, sdk_blocks
    assert all(b.source == "sdk" for b in sdk_blocks.values())
    main_block, thread_block, run_block = sdk_blocks["checksum"], sdk_blocks["thread work"], sdk_blocks["run hot kernel"]
    assert (main_block.h.tid, main_block.op, main_block.elements, main_block.symbol) == (pid, "simd", 4096, "py_checksum")
    assert (thread_block.h.tid, thread_block.symbol) == (thread_tid, "py_thread_work") and thread_tid != pid
    assert run_block.h.tid == pid
    py_calls = of(py, SyscallSpan)
    for block, payload in ((main_block, b"inside-py-block"), (thread_block, b"inside-thread-block")):
        [w] = [s for s in py_calls if s.name == "write" and s.payload == payload]
        assert w.h.tid == block.h.tid and _contains(block, w), (block.h, w.h)
        # the sleep that follows the write, same thread, also inside
        assert any(s.name in ("clock_nanosleep", "select", "pselect6") and s.h.tid == block.h.tid and _contains(block, s)
                   and s.h.mono_ns >= w.h.mono_ns for s in py_calls), [s.name for s in py_calls if s.h.tid == block.h.tid]
    # the C program ran entirely inside the block that spawned it
    hot_events = [e for e in hot.events if isinstance(e, (SyscallSpan, ComputeBlock, ProcessEvent))]
    assert hot_events and all(_contains(run_block, e) for e in hot_events)
    # ... and the spawn itself (clone/vfork/clone3) is a syscall of the Python main thread inside that block
    assert any(s.name in ("clone", "clone3", "vfork", "fork") and s.h.tid == pid and _contains(run_block, s)
               for s in py_calls)

    # --- the uprobed hot function: under the C process and its one thread, threshold applied --------------
    hot_blocks = of(hot, ComputeBlock)
    assert all((b.symbol, b.source, b.h.tid) == ("hot_kernel", "uprobe", hot_pid) for b in hot_blocks)
    assert all(b.h.duration_ns >= THRESHOLD_NS for b in hot_blocks)  # only calls >= 50 µs are shipped
    slow = [b for b in hot_blocks if b.elements >= SLOW_BASE]
    assert [b.elements for b in sorted(slow, key=lambda b: b.h.mono_ns)] == [SLOW_BASE + i for i in range(SLOW)]
    assert all(b.attrs == {"n": b.elements} for b in slow)
    assert all(2 * SLOW_US * 1000 <= b.h.duration_ns < 2_000_000_000 for b in slow)  # slept + spun SLOW_US each
    # fast calls take ns (plus the probe's trap, ~10-20 µs here): only one the scheduler preempted for > 50 µs
    # on this loaded machine may ship, never most of them
    fast_shipped = [b for b in hot_blocks if b.elements < SLOW_BASE]
    assert len(fast_shipped) <= FAST // 10, len(fast_shipped)
    # a slow block contains the clock_nanosleep its call made, on the same thread
    hot_calls = of(hot, SyscallSpan)
    for b in slow:
        inside = [s for s in hot_calls if s.name == "clock_nanosleep" and _contains(b, s)]
        assert len(inside) == 1 and inside[0].h.tid == hot_pid, (b.elements, [(s.name, s.h) for s in hot_calls][:20])
    # exact per-function counts: every call, shipped or not (windows sum to the total)
    aggs = [a for a in of(hot, FunctionAggregate) if a.symbol == "hot_kernel"]
    assert aggs and all(a.library.endswith("hot_kernel_app") for a in aggs)
    assert sum(a.calls for a in aggs) == FAST + SLOW
    assert sum(a.total_ns for a in aggs) >= sum(b.h.duration_ns for b in slow)
    assert sum(sum(a.hist_log2) for a in aggs) == FAST + SLOW
    assert not any(isinstance(e, FunctionAggregate) for e in py.events)  # the Python process runs no hot_kernel

    # --- decisions and marks ------------------------------------------------------------------------------
    decisions = {d.decision_id: d for p in trace.processes.values() for d in of(p, TranspilerDecision)}
    want = {"RT1", "L1", "L2"} if decisions_from_log else {"RT1"}
    assert set(decisions) == want, decisions
    rt = decisions["RT1"]
    assert (rt.h.pid, rt.h.tid, rt.source, rt.target_symbol, rt.alternatives, rt.attrs) == \
        (pid, pid, "sdk", "hot_kernel", ("sse2", "scalar"), {"lanes": 8})
    # between the thread's block and the block that ran the C program, in the main thread's order
    assert thread_block.h.mono_ns + thread_block.h.duration_ns <= rt.h.mono_ns <= run_block.h.mono_ns
    if decisions_from_log:
        assert {decisions[k].source for k in ("L1", "L2")} == {"log"}
        assert all(decisions[k].h.pid == pid for k in ("L1", "L2"))  # the root process
        assert decisions["L1"].alternatives == ("scalar", "simd x4") and decisions["L1"].attrs == {"width": 8}
    [mark] = of(py, Mark)
    assert (mark.name, mark.attrs, mark.h.tid) == ("start", {"phase": "layers"}, pid)
    assert mark.h.mono_ns <= main_block.h.mono_ns

    # --- one causal timeline: the pipeline stamped every layer's events ----------------------------------
    layered = [*hot_blocks, *sdk_blocks.values(), rt, mark]
    assert all(e.h.stamp.lamport > 0 and e.h.stamp.hlc > 0 for e in layered)
    assert all(e.h.wall_ns > 0 for e in layered)
    # the C process's events come after its parent's spawn in Lamport order (fork edge)
    spawn = min((s for s in py_calls if s.name in ("clone", "clone3", "vfork", "fork") and _contains(run_block, s)),
                key=lambda s: s.h.mono_ns)
    assert min(e.h.stamp.lamport for e in hot.events if not isinstance(e, (SyscallAggregate, FunctionAggregate))) \
        > spawn.h.stamp.lamport
    # the process spans nest as the processes did: the child's span starts at its spawn, inside its parent's
    # (not at the start of an aggregate window that began before the fork)
    assert spawn.h.wall_ns <= hot.start_wall_ns <= hot.end_wall_ns <= py.end_wall_ns
    assert py.start_wall_ns <= mark.h.wall_ns
    # the fork edge goes from the parent's fork record to the child's first event (not to a window)
    hot_ids = {e.h.event_id: e for e in hot.events}
    forks = [x for x in trace.edges if x.kind is EdgeKind.FORK and x.dst in hot_ids]
    assert len(forks) == 1 and not isinstance(hot_ids[forks[0].dst], (SyscallAggregate, FunctionAggregate))
    assert any(e.h.event_id == forks[0].src for e in py.events)
    # along the C thread, Lamport follows program order among its syscalls
    seq = sorted((s for s in hot_calls if s.h.tid == hot_pid), key=lambda s: s.h.mono_ns)
    assert all(a.h.stamp.lamport < b.h.stamp.lamport for a, b in itertools.pairwise(seq))
    return {"hot_blocks": hot_blocks, "slow": slow, "sdk_blocks": sdk_blocks, "decisions": decisions}


def check_decision_blocks(rows: list[dict[str, Any]], facts: dict[str, Any], decisions_from_log: bool) -> None:
    """``sysweave query --name decision-blocks``: decisions linked to the blocks whose symbol they name."""
    by_id = {r["decision_id"]: r for r in rows}
    hot_blocks = facts["hot_blocks"]
    rt = by_id["RT1"]
    assert (rt["target_symbol"], int(rt["blocks"])) == ("hot_kernel", len(hot_blocks))
    assert int(rt["total_ns"]) == sum(b.h.duration_ns for b in hot_blocks)
    assert int(rt["max_ns"]) == max(b.h.duration_ns for b in hot_blocks)
    if decisions_from_log:
        assert (int(by_id["L1"]["blocks"]), int(by_id["L1"]["total_ns"])) == (int(rt["blocks"]), int(rt["total_ns"]))
        checksum = facts["sdk_blocks"]["checksum"]
        assert (int(by_id["L2"]["blocks"]), int(by_id["L2"]["total_ns"])) == (1, checksum.h.duration_ns)
        assert set(by_id) == {"RT1", "L1", "L2"}
    else:
        assert set(by_id) == {"RT1"}


def check_decision_functions(rows: list[dict[str, Any]]) -> None:
    """The exact count of every call of the function a decision names, not only the shipped blocks."""
    rt = next(r for r in rows if r["decision_id"] == "RT1")
    assert int(rt["calls"]) == FAST + SLOW


# ------------------------------------------------------------------------------------------------ embedded


def test_embedded_one_timeline(programs: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    label = f"layers-{uuid.uuid4().hex[:8]}"
    res = subprocess.run([*SYSWEAVE, "trace", "-f", "--observable", "--store", str(store), "--label", label,
                          "--uprobe", uprobe(programs), "--decisions", str(programs / "decisions.jsonl"),
                          "-o", str(tmp_path / "trace.txt"), "--", *command(programs)],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    rep = report_of(res.stdout)
    trace = load(str(store), label)
    assert trace.label == label
    facts = check_timeline(trace, rep, decisions_from_log=True)
    check_decision_blocks(named(["--store", str(store)], "decision-blocks"), facts, decisions_from_log=True)
    check_decision_functions(named(["--store", str(store)], "decision-functions"))
    # the text output shows the slow calls as compute lines of the C process
    text = (tmp_path / "trace.txt").read_text()
    for i in range(SLOW):
        assert re.search(rf"\[pid +{rep['hot_pid']}\] ~ compute hot_kernel\(n={SLOW_BASE + i}\) <0\.\d+>", text)


# --------------------------------------------------------------------------------------------- distributed


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


JAEGER_CONFIG = """
service:
  extensions: [jaeger_storage, jaeger_query]
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [jaeger_storage_exporter]
  telemetry:
    metrics:
      level: none
    logs:
      level: warn
extensions:
  jaeger_query:
    storage:
      traces: mem
    http:
      endpoint: 127.0.0.1:{query}
    grpc:
      endpoint: 127.0.0.1:{query_grpc}
  jaeger_storage:
    backends:
      mem:
        memory:
          max_traces: 10000
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:{otlp}
processors:
  batch:
exporters:
  jaeger_storage_exporter:
    trace_storage: mem
"""


@pytest.fixture
def jaeger(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """A private Jaeger v2 (in-memory) on free ports, so a concurrent test_otlp.py on the default ports does
    not collide: yields (its OTLP gRPC endpoint, its query API base URL)."""
    if not JAEGER.exists():
        pytest.fail("Jaeger is not built: run 'make setup' (builds .local/bin/jaeger from the Go module proxy)",
                    pytrace=False)
    ports = {"query": _free_port(), "query_grpc": _free_port(), "otlp": _free_port()}
    cfg = tmp_path / "jaeger.yaml"
    cfg.write_text(JAEGER_CONFIG.format(**ports))
    log = open(tmp_path / "jaeger.log", "w")  # noqa: SIM115
    proc = subprocess.Popen([str(JAEGER), f"--config=file:{cfg}"], stdout=log, stderr=subprocess.STDOUT)
    try:
        end = time.monotonic() + 60
        while not (_open(ports["query"]) and _open(ports["otlp"])):
            if time.monotonic() > end or proc.poll() is not None:
                pytest.fail(f"Jaeger did not start: {(tmp_path / 'jaeger.log').read_text()[-2000:]}", pytrace=False)
            time.sleep(0.3)
        yield f"127.0.0.1:{ports['otlp']}", f"http://127.0.0.1:{ports['query']}"
    finally:
        _stop(proc)
        log.close()


def _stop(proc: subprocess.Popen[Any], wait: float = 20) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(wait)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def _jaeger_trace(base: str, trace_id: str, want_spans: int, timeout: float = 120) -> dict[str, Any]:
    got: dict[str, Any] = {}
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            with urllib.request.urlopen(f"{base}/api/traces/{trace_id}", timeout=10) as r:
                data = json.load(r)["data"]
            if data:
                got = data[0]
                if len(got["spans"]) >= want_spans:
                    return got
        except OSError:
            pass
        time.sleep(1)
    raise AssertionError(f"trace {trace_id} has {len(got.get('spans', []))} spans in Jaeger, wanted {want_spans}")


def _tags(span: dict[str, Any]) -> dict[str, Any]:
    return {t["key"]: t["value"] for t in span["tags"]}


@pytest.mark.kafka
@pytest.mark.clickhouse
def test_distributed_one_timeline(programs: Path, tmp_path: Path, kafka_bootstrap: str,
                                  clickhouse_hostport: tuple[str, int], jaeger: tuple[str, str]) -> None:
    from tests.distributed.helpers import create_topics


    otlp, jaeger_api = jaeger
    tag = uuid.uuid4().hex[:8]
    suffix = f"-layers-{tag}"
    label = f"layers-{tag}"
    db = f"layers_{tag}"
    url = f"clickhouse://{clickhouse_hostport[0]}:{clickhouse_hostport[1]}/{db}"
    create_topics(kafka_bootstrap, suffix, partitions=1)
    # (create_topics made the validation topic too)
    env = {**os.environ, "SYSWEAVE_TOPIC_SUFFIX": suffix}
    logs = {n: open(tmp_path / f"{n}.log", "w") for n in ("worker", "validator")}  # noqa: SIM115
    worker = subprocess.Popen([*SYSWEAVE, "streams", "worker", "--kafka", kafka_bootstrap, "--grace-s", "2",
                               "--app-id", f"streams{suffix}"], env=env, stdout=logs["worker"], stderr=subprocess.STDOUT)
    validator = subprocess.Popen([*SYSWEAVE, "validator", "serve", "--kafka", kafka_bootstrap, "--clickhouse", url,
                                  "--otlp", otlp], env=env, stdout=logs["validator"], stderr=subprocess.STDOUT)
    try:
        res = subprocess.run([*SYSWEAVE, "agent", "--kafka", kafka_bootstrap, "--trace-label", label, "--observable",
                              "--metrics-port", "0", "--spool", str(tmp_path / "spool"), "--uprobe", uprobe(programs),
                              "--", *command(programs)], capture_output=True, text=True, timeout=300, env=env)
        assert res.returncode == 0, res.stderr[-3000:]
        rep = report_of(res.stdout)

        # the trace is stored once the worker closed it and the service wrote it; a part that reached the
        # worker after it closed the trace comes as an update, so wait until the stored trace is whole
        trace = None
        end = time.monotonic() + 240
        while time.monotonic() < end and validator.poll() is None and worker.poll() is None:
            found = subprocess.run([*SYSWEAVE, "query", "--clickhouse", url, "--format", "json",
                                    f"SELECT count() AS n FROM traces WHERE label = '{label}'"],
                                   capture_output=True, text=True, timeout=120)
            if found.returncode == 0 and int(json.loads(found.stdout)["data"][0]["n"]) > 0:
                trace = load(url, label)
                if _whole(trace, rep):
                    break
            time.sleep(2)
        assert trace is not None, _logs(tmp_path)
        facts = check_timeline(trace, rep, decisions_from_log=False)
        assert trace.label == label
        check_decision_blocks(named(["--clickhouse", url], "decision-blocks"), facts, decisions_from_log=False)
        check_decision_functions(named(["--clickhouse", url], "decision-functions"))

        # --- Jaeger: the same trace over OTLP -----------------------------------------------------------------
        procs = {p.pid: p for p in trace.processes.values()}
        hot = procs[rep["hot_pid"]]
        n_blocks = len(facts["hot_blocks"]) + len(facts["sdk_blocks"])
        got = _jaeger_trace(jaeger_api, trace.trace_id.hex(), want_spans=n_blocks + 2)
        by_id = {s["spanID"]: s for s in got["spans"]}  # an update re-exports the same span ids
        spans = list(by_id.values())

        def parent(s: dict[str, Any]) -> dict[str, Any] | None:
            refs = [r for r in s["references"] if r["refType"] == "CHILD_OF"]
            return by_id.get(refs[0]["spanID"]) if refs else None

        process_spans = {int(_tags(s)["process.pid"]): s for s in spans if "sysweave.event_id" not in _tags(s)
                         and "process.pid" in _tags(s)}
        assert {rep["pid"], rep["hot_pid"]} <= set(process_spans)
        assert parent(process_spans[rep["hot_pid"]]) is process_spans[rep["pid"]]  # the C process under Python's
        blocks = [s for s in spans if "compute.operation" in _tags(s)]
        hot_spans = [s for s in blocks if _tags(s)["compute.symbol"] == "hot_kernel"]
        assert len(hot_spans) == len(facts["hot_blocks"]) and len(blocks) == n_blocks
        for s in hot_spans:
            t = _tags(s)
            assert parent(s) is process_spans[rep["hot_pid"]]
            assert t["compute.source"] == "uprobe" and int(t["lamport.clock"]) > 0 and int(t["thread.id"]) == hot.pid
            assert s["duration"] >= THRESHOLD_NS // 1000
        assert sorted(int(_tags(s)["compute.elements"]) for s in hot_spans if int(_tags(s)["compute.elements"]) >= SLOW_BASE) \
            == [SLOW_BASE + i for i in range(SLOW)]
        sdk_spans = {_tags(s)["compute.name"]: s for s in blocks if _tags(s)["compute.source"] == "sdk"}
        assert set(sdk_spans) == {"checksum", "thread work", "run hot kernel"}
        assert all(parent(s) is process_spans[rep["pid"]] and int(_tags(s)["lamport.clock"]) > 0 for s in sdk_spans.values())
        assert _tags(sdk_spans["checksum"])["compute.operation"] == "simd"
        assert int(_tags(sdk_spans["thread work"])["thread.id"]) == rep["thread_tid"]
        decision_spans = [s for s in spans if "transpiler.decision_id" in _tags(s)]
        assert [(_tags(s)["transpiler.decision_id"], _tags(s)["transpiler.target_symbol"]) for s in decision_spans] == \
            [("RT1", "hot_kernel")]
        assert parent(decision_spans[0]) is process_spans[rep["pid"]] and int(_tags(decision_spans[0])["lamport.clock"]) > 0
        # the C process's span lies inside the SDK block that spawned it (µs times)
        run = sdk_spans["run hot kernel"]
        hot_proc_span = process_spans[rep["hot_pid"]]
        assert run["startTime"] <= hot_proc_span["startTime"] and \
            hot_proc_span["startTime"] + hot_proc_span["duration"] <= run["startTime"] + run["duration"] + 1
    finally:
        _stop(worker)
        _stop(validator)
        for f in logs.values():
            f.close()
        from clickhouse_driver import Client

        client = Client(clickhouse_hostport[0], port=clickhouse_hostport[1])
        client.execute(f"DROP DATABASE IF EXISTS {db}")
        client.disconnect()


def _whole(trace: UnifiedTrace, rep: dict[str, int]) -> bool:
    """Both processes exited and every call of the hot function is counted."""
    procs = {p.pid: p for p in trace.processes.values()}
    if rep["pid"] not in procs or rep["hot_pid"] not in procs:
        return False
    calls = sum(e.calls for e in procs[rep["hot_pid"]].events if isinstance(e, FunctionAggregate))
    return calls >= FAST + SLOW and all(procs[p].exit_code is not None for p in (rep["pid"], rep["hot_pid"]))


def _logs(tmp_path: Path) -> str:
    return "\n".join(f"--- {n}\n" + (tmp_path / f"{n}.log").read_text()[-3000:] for n in ("worker", "validator"))
