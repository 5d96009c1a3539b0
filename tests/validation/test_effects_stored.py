"""Stored traces validate away from disk: FileState events round-trip through the store (chdb embedded and
the ClickHouse 18.16 server) and `sysweave validate --original-trace/--transpiled-trace` judges them by the
same definition as local runs, naming the host, process role and file where two multi-host runs diverge."""

from __future__ import annotations

import hashlib
import itertools
import json
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from sysweave.schemas.events import (
    CausalStamp,
    Event,
    EventHeader,
    FileState,
    ProcessEvent,
    ProcessEventType,
    SyscallSpan,
    UnifiedTrace,
    make_event_id,
)
from sysweave.streams.pipeline import build_trace
from sysweave.validator.equivalence.stored import trace_obs, validate_traces

SYSWEAVE = [sys.executable, "-m", "sysweave.cli.main"]


def job(worker_b_result: bytes, producer: int, tmp: str = "/jobs/run1") -> UnifiedTrace:
    """A two-host job: on host A a coordinator prints the total; on host B a worker writes out/1.txt
    (an absolute path under its working directory) and sends its result to A over TCP."""
    seq = itertools.count(1)

    def h(host: str, pid: int, t: int) -> EventHeader:
        return EventHeader(make_event_id(producer, next(seq)), host, pid, pid, t, 1_795_000_000_000_000_000 + t, 10,
                           CausalStamp())

    cwd_b = f"{tmp}/B"
    total = b"total " + worker_b_result + b"\n"
    n = len(worker_b_result)
    evs: list[Event] = [
        ProcessEvent(h("A", 10, 1), ProcessEventType.EXEC, filename="/usr/bin/python3", argv=("python3", "job.py", "coord")),
        SyscallSpan(h("A", 10, 2), 41, "socket", 3, {"domain": 2, "type": 1}),
        SyscallSpan(h("A", 10, 3), 49, "bind", 0, {"fd": 3, "addr": "0.0.0.0:7000"}),
        ProcessEvent(h("B", 20, 4), ProcessEventType.EXEC, filename="/usr/bin/python3",
                     argv=("python3", "job.py", "worker", "1")),
        SyscallSpan(h("B", 20, 5), 0, "openat", 3, {"dirfd": -100, "path": f"{cwd_b}/out/1.txt", "flags": 0o1101}),
        SyscallSpan(h("B", 20, 6), 1, "write", n, {"fd": 3}, worker_b_result, n),
        SyscallSpan(h("B", 20, 7), 3, "close", 0, {"fd": 3}),
        SyscallSpan(h("B", 20, 8), 41, "socket", 3, {"domain": 2, "type": 1}),
        SyscallSpan(h("B", 20, 9), 42, "connect", 0, {"fd": 3, "addr": "10.0.0.1:7000"}),
        SyscallSpan(h("A", 10, 10), 43, "accept", 4, {"fd": 3, "addr": "10.0.0.2:40000"}),
        SyscallSpan(h("B", 20, 11), 1, "write", n, {"fd": 3}, worker_b_result, n),
        SyscallSpan(h("A", 10, 12), 0, "read", n, {"fd": 4}, worker_b_result, n),
        SyscallSpan(h("A", 10, 13), 1, "write", len(total), {"fd": 1}, total, len(total)),
        ProcessEvent(h("A", 10, 14), ProcessEventType.EXIT, exit_code=0),
        ProcessEvent(h("B", 20, 15), ProcessEventType.EXIT, exit_code=0),
        FileState(h("B", 20, 16), f"{cwd_b}/out/1.txt", True, "file", 0o644, n,
                  hashlib.blake2b(worker_b_result, digest_size=32).hexdigest(), worker_b_result, "", cwd_b),
    ]
    return build_trace(evs, producer.to_bytes(16, "big"), f"job-{producer}").trace


def test_multi_host_paths_are_relative_to_each_hosts_working_directory() -> None:
    a = trace_obs(job(b"1203", 1, "/jobs/run1"))
    assert set(a.files) == {"B: ./out/1.txt"} and a.streams["A: stdout"].data == b"total 1203\n"
    assert validate_traces(job(b"1203", 1, "/jobs/run1"), job(b"1203", 2, "/jobs/run2"))["verdict"] == "equivalent"


def test_the_divergence_names_host_role_and_file_then_the_symptoms() -> None:
    report = validate_traces(job(b"1203", 1), job(b"1204", 2), ("ebpf", "ebpf"))
    assert report["verdict"] == "divergent"
    assert report["explanation"].startswith("on host B, 'python job.py worker 1': byte 3 of ./out/1.txt differs")
    # downstream, in happens-before order: the bytes B sent, what A received, then A's stdout
    assert [s["resource"] for s in report["symptoms"]] == [
        "conversation:B: stream 10.0.0.1:7000 (sent)", "conversation:A: stream accepted on 0.0.0.0:7000 (received)",
        "A: stdout"]
    assert report["backend"] == {"original": "ebpf", "transpiled": "ebpf"}


def _store_and_validate(store_arg: list[str], tmp_path: Path) -> None:
    from sysweave.validator.store import open_store

    target = store_arg[1]
    store = open_store(target)
    tag = uuid.uuid4().hex[:6]
    traces = {name: job(content, n, f"/jobs/{name}") for n, (name, content) in
              enumerate([(f"good-{tag}", b"1203"), (f"again-{tag}", b"1203"), (f"bad-{tag}", b"1204")], start=11)}
    for name, trace in traces.items():
        store.store_trace(trace, label=name, backend="ebpf")
    loaded = store.load_trace(f"bad-{tag}")
    assert next(e for p in loaded.processes.values() for e in p.events if isinstance(e, FileState)).exists is True
    store.close()

    def validate(a: str, b: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*SYSWEAVE, "validate", "--original-trace", a, "--transpiled-trace", b, *store_arg,
                               "--json"], capture_output=True, text=True, timeout=300)

    same = validate(f"good-{tag}", f"again-{tag}")
    assert same.returncode == 0, same.stdout + same.stderr
    bad = validate(f"good-{tag}", traces[f"bad-{tag}"].trace_id.hex())
    assert bad.returncode == 1, bad.stdout + bad.stderr
    report = json.loads(bad.stdout)
    assert report["divergence"]["resource"] == "file:B: ./out/1.txt" and report["divergence"]["host"] == "B"
    assert report["backend"]["original"] == "ebpf"
    missing = validate(f"good-{tag}", "no-such-label")
    assert missing.returncode == 2 and "no-such-label" in json.loads(missing.stdout)["reason"]  # --json: the report says why


def test_stored_traces_validate_from_the_embedded_store(tmp_path: Path) -> None:
    _store_and_validate(["--store", str(tmp_path / "store")], tmp_path)


@pytest.mark.clickhouse
def test_stored_traces_validate_from_the_clickhouse_server(clickhouse_hostport: tuple[str, int], tmp_path: Path) -> None:
    db = f"effects_{uuid.uuid4().hex[:8]}"
    url = f"clickhouse://{clickhouse_hostport[0]}:{clickhouse_hostport[1]}/{db}"
    try:
        _store_and_validate(["--clickhouse", url], tmp_path)
    finally:
        from clickhouse_driver import Client

        Client(clickhouse_hostport[0], port=clickhouse_hostport[1]).execute(f"DROP DATABASE IF EXISTS {db}")
