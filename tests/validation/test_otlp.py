"""OTLP export against a real receiver: Jaeger v2 (built by make setup), queried through its HTTP API."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from pipeline.recorded import recorded_events  # tests/pipeline: the recorded two-host event set
from sysweave.schemas.events import (
    CausalStamp,
    EventHeader,
    ProcessEvent,
    ProcessEventType,
    SyscallSpan,
    make_event_id,
)
from sysweave.streams.pipeline import build_trace
from sysweave.validator.export.otlp import export, make_exporter, parse_traceparent

JAEGER = Path(__file__).resolve().parents[2] / ".local" / "bin" / "jaeger"


def _open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


@pytest.fixture(scope="module")
def jaeger(tmp_path_factory: pytest.TempPathFactory):
    if not JAEGER.exists():
        pytest.fail("Jaeger is not built: run 'make setup' (builds .local/bin/jaeger from the Go module proxy)", pytrace=False)
    log = open(tmp_path_factory.mktemp("jaeger") / "jaeger.log", "w")  # noqa: SIM115
    proc = subprocess.Popen([str(JAEGER)], stdout=log, stderr=subprocess.STDOUT)
    try:
        for _ in range(150):
            if _open(16686) and _open(4317) and _open(4318):
                break
            time.sleep(0.2)
        else:
            pytest.fail("Jaeger did not open 4317/4318/16686 within 30 s", pytrace=False)
        yield "http://127.0.0.1:16686"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()  # Jaeger drains for a while on SIGTERM; the test data does not matter
            proc.wait(10)
        log.close()


def _trace(seed: int):
    n = iter(range(1, 100))

    def h(pid: int, t: int, dur: int = 0) -> EventHeader:
        return EventHeader(make_event_id(seed, next(n)), "host-a", pid, pid, t, 1_795_000_000_000_000_000 + t, dur,
                           CausalStamp(t, 0))

    events = [ProcessEvent(h(10, 1000), ProcessEventType.EXEC, filename="/usr/bin/job", argv=("job", "--fast")),
              SyscallSpan(h(10, 2000, 500), 257, "openat", 3, {"path": "/etc/hostname", "flags": 0}),
              ProcessEvent(h(10, 3000), ProcessEventType.FORK, parent_pid=10, child_pid=11),
              ProcessEvent(h(11, 4000), ProcessEventType.EXEC, filename="/usr/bin/sort", argv=("sort",)),
              SyscallSpan(h(11, 5000, 700), 1, "write", 5, {"fd": 1}, b"hello", 5),
              ProcessEvent(h(11, 6000), ProcessEventType.EXIT, exit_code=0)]
    return build_trace(events, os.urandom(16)).trace


def _get(base: str, trace_id: str, spans: int = 4) -> dict:
    for _ in range(50):
        try:
            with urllib.request.urlopen(f"{base}/api/traces/{trace_id}", timeout=5) as r:
                data = json.load(r)["data"]
                if data and len(data[0]["spans"]) >= spans:
                    return data[0]  # type: ignore[no-any-return]
        except OSError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"trace {trace_id} never appeared in Jaeger")


@pytest.mark.parametrize("protocol,endpoint", [("grpc", "127.0.0.1:4317"), ("http/protobuf", "http://127.0.0.1:4318")])
def test_one_trace_with_process_parents(jaeger: str, protocol: str, endpoint: str) -> None:
    trace = _trace(seed=1 if protocol == "grpc" else 2)
    assert export(trace, make_exporter(endpoint, protocol)) == 4
    got = _get(jaeger, trace.trace_id.hex())
    spans = {s["operationName"]: s for s in got["spans"]}
    assert set(spans) == {"job --fast", "sort", "openat", "write"}
    assert {s["traceID"] for s in got["spans"]} == {trace.trace_id.hex()}  # one trace, not one per syscall
    parent_of = {s["operationName"]: s["references"][0]["spanID"] if s["references"] else None for s in got["spans"]}
    assert parent_of["job --fast"] is None
    assert parent_of["sort"] == spans["job --fast"]["spanID"]
    assert parent_of["openat"] == spans["job --fast"]["spanID"] and parent_of["write"] == spans["sort"]["spanID"]
    tags = {t["key"]: t["value"] for t in spans["openat"]["tags"]}
    assert tags["syscall.name"] == "openat" and tags["syscall.args.path"] == "/etc/hostname"
    assert spans["openat"]["startTime"] == (1_795_000_000_000_000_000 + 2000) // 1000  # µs
    proc = got["processes"][spans["write"]["processID"]]
    ptags = {t["key"]: t["value"] for t in proc["tags"]}
    assert proc["serviceName"] == "sort" and ptags["process.pid"] == 11 and ptags["host.name"] == "host-a"


def test_trace_parent_is_honoured(jaeger: str) -> None:
    parent = "00-" + "ab" * 16 + "-" + "cd" * 8 + "-01"
    trace = _trace(seed=3)
    export(trace, make_exporter("127.0.0.1:4317"), traceparent=parent)
    got = _get(jaeger, "ab" * 16)
    root = next(s for s in got["spans"] if s["operationName"] == "job --fast")
    assert root["references"][0]["spanID"] == "cd" * 8


def test_bad_traceparent() -> None:
    with pytest.raises(ValueError, match="traceparent"):
        parse_traceparent("00-xyz-01")


def test_cross_host_span_times_are_the_corrected_wall_times(jaeger: str) -> None:
    """Host B's clock reads 5 ms ahead; the pipeline corrects its times once and Jaeger shows exactly those."""
    rec = recorded_events(offset_b_ns=5_000_000)
    trace = build_trace(rec.events, os.urandom(16), "otlp-cross-host").trace
    (clock,) = trace.clocks
    assert clock.host == "B" and abs(clock.offset_ns - 5_000_000) <= clock.bound_ns
    n = export(trace, make_exporter("127.0.0.1:4317"))
    got = _get(jaeger, trace.trace_id.hex(), spans=n)
    by_id = {e.h.event_id.hex(): e for p in trace.processes.values() for e in p.events}
    raw = {e.h.event_id.hex(): e for e in rec.events}
    seen_b = 0
    for span in got["spans"]:
        tags = {t["key"]: t["value"] for t in span["tags"]}
        if "sysweave.event_id" in tags:
            e = by_id[tags["sysweave.event_id"]]
            assert span["startTime"] == e.h.wall_ns // 1000  # µs: the corrected wall time, not shifted again
            assert int(tags["sysweave.hlc"]) == e.h.stamp.hlc > 0  # Jaeger's JSON spells int64 as a string
            if e.h.host_id == "B":
                seen_b += 1
                assert e.h.wall_ns == raw[tags["sysweave.event_id"]].h.wall_ns - clock.offset_ns
        else:  # a process span: its first event's corrected start
            p = trace.processes[(tags["host.name"], tags["process.pid"])]
            assert span["startTime"] == p.start_wall_ns // 1000
    assert seen_b >= 10
