"""Real eBPF capture against strace -c -f on deterministic programs (runs as root in CI)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from .helpers import FIXTURES, SYSWEAVE, comparable, strace_counts, sysweave, sysweave_counts

pytestmark = [pytest.mark.bpf, pytest.mark.usefixtures("bpf_ready")]


def test_c_workload_counts_equal_strace(workload_bin: str, tmp_path) -> None:
    argv = [workload_bin, str(tmp_path)]
    expected = strace_counts(argv)
    got, doc = sysweave_counts(argv)
    assert doc["backend"] == "ebpf" and doc["exit_code"] == 0 and doc["lost_events"] == 0
    assert comparable(got) == comparable(expected)  # futex: see SCHEDULING_DEPENDENT
    assert got["write"][0] >= 100 + 30 + 5 + 1 and got["openat"][1] == 40 and got["connect"] == (1, 1)


def test_python_workload_counts_equal_strace(tmp_path) -> None:
    argv = [sys.executable, "-B", "-S", str(FIXTURES / "workload.py"), str(tmp_path)]
    # The same environment and argv for both: the interpreter's heap grows with its environment (brk: 14 calls
    # here, 15 with 800 more bytes of it, 16 with 6400), so sysweave's $SYSWEAVE_SDK_SOCKET alone can move brk
    # across a page where the environment is near one (a fresh machine: 16 vs 14). --no-sdk: the command gets
    # exactly this environment; a fixed hash seed: the same dict layouts, so the same allocations.
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    subprocess.run(argv, check=True, env=env)  # warm the page cache; -B: no .pyc writes that differ between runs
    expected = strace_counts(argv, env=env)
    got, doc = sysweave_counts(argv, "--no-sdk", env=env)
    assert doc["exit_code"] == 0
    assert got["write"] == expected["write"] and got["newfstatat"] == expected["newfstatat"]
    assert got["write"][0] >= 200 and got["newfstatat"][1] >= 30
    assert comparable(got) == comparable(expected)  # futex: see SCHEDULING_DEPENDENT


def test_ptrace_backend_gives_the_same_summary(workload_bin: str, tmp_path) -> None:
    argv = [workload_bin, str(tmp_path)]
    ebpf, _ = sysweave_counts(argv)
    ptrace, doc = sysweave_counts(argv, "--backend", "ptrace")
    assert doc["backend"] == "ptrace"
    assert comparable(ptrace) == comparable(ebpf)  # futex: see SCHEDULING_DEPENDENT


def _events(*args: str, cwd: str | None = None) -> list[dict]:
    res = sysweave("trace", "--format", "jsonl", "--observable", "--no-store", *args, cwd=cwd)
    return [json.loads(line) for line in res.stderr.splitlines() if line.startswith("{")]


def test_observable_calls_are_decoded(workload_bin: str, tmp_path) -> None:
    evs = _events("-f", "--", workload_bin, str(tmp_path))
    by = lambda name: [e for e in evs if e["syscall"] == name]  # noqa: E731
    opened = [e for e in by("openat") if e["args"]["path"] == f"{tmp_path}/a.txt"]
    assert opened and opened[0]["ret"] >= 0 and opened[0]["args"]["flags"] & os.O_CREAT
    writes = [e for e in by("write") if e["payload"] == "hello sysweave\n"]
    assert len(writes) == 100 and all(e["payload_len"] == 15 for e in writes)
    assert sum(1 for e in by("openat") if e["errno"] == "ENOENT" and e["args"]["path"] == "/nonexistent/sysweave") == 40
    ren = by("rename")[0]
    assert ren["args"] == {"oldpath": f"{tmp_path}/a.txt", "newpath": f"{tmp_path}/b.txt"}
    assert by("mkdir")[0]["args"]["path"] == f"{tmp_path}/sub" and by("unlink")[0]["args"]["path"] == f"{tmp_path}/b.txt"
    pipe = by("pipe2")[0]
    assert len(pipe["args"]["pipefd"]) == 2
    conn = by("connect")[0]
    assert conn["args"]["addr"] == "127.0.0.1:9" and conn["errno"] == "ECONNREFUSED"
    assert any(e["payload"] == "ping" for e in by("read"))
    assert sorted(e["args"]["wstatus"] >> 8 for e in by("wait4") if e["ret"] > 0) == [3, 4, 5]
    ex = by("execve")[0]
    assert ex["args"]["argv"] == [workload_bin, str(tmp_path)]


def test_follow_forks_and_threads(workload_bin: str, tmp_path) -> None:
    with_f = _events("-f", "--", workload_bin, str(tmp_path))
    without = _events("--", workload_bin, str(tmp_path))
    assert len({e["pid"] for e in with_f}) == 4  # parent + 3 forked children
    assert len({e["pid"] for e in without}) == 1
    assert len({e["tid"] for e in without}) == 2  # the thread is traced without -f (same process)
    child_writes = [e for e in with_f if e["syscall"] == "write" and e["payload"] == "child\n"]
    assert len(child_writes) == 30


def test_exit_code_is_the_commands() -> None:
    assert sysweave("trace", "--no-store", "-o", "/dev/null", "--", "sh", "-c", "exit 7").returncode == 7
    assert sysweave("trace", "--no-store", "-o", "/dev/null", "--", "sh", "-c", "kill -TERM $$").returncode == 128 + 15


def test_bad_input() -> None:
    r = sysweave("trace", "--no-store", "--", "no-such-command-sysweave")
    assert r.returncode == 127 and "Can't stat 'no-such-command-sysweave'" in r.stderr
    r = sysweave("trace", "--no-store", "-p", "999999999")
    assert r.returncode == 1 and "No such process" in r.stderr
    r = sysweave("trace", "--no-store", "-e", "trace=openat,bogus", "--", "true")
    assert r.returncode == 2 and "'bogus'" in r.stderr
    r = sysweave("trace", "--no-store", "-e", "trace=%nonsense", "--", "true")
    assert r.returncode == 2 and "%nonsense" in r.stderr
    assert sysweave("trace").returncode == 2


def test_trace_filter_expressions(tmp_path) -> None:
    r = sysweave("trace", "--no-store", "--no-sampling", "-e", "trace=%file", "--", "cat", "/etc/hostname")
    names = {line.split("(", 1)[0] for line in r.stderr.splitlines() if "(" in line and not line.startswith("sysweave")}
    assert "openat" in names and "read" not in names and "mmap" not in names
    r = sysweave("trace", "--no-store", "--no-sampling", "-e", "trace=!/^(mmap|mprotect)$", "--", "true")
    assert "mmap(" not in r.stderr and "execve(" in r.stderr


def _wait_for_child(parent: int, timeout: float = 60) -> int:
    """The pid of ``parent``'s first child, once the tracer has compiled and started it."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        for task in os.listdir(f"/proc/{parent}/task"):
            kids = Path(f"/proc/{parent}/task/{task}/children").read_text().split()
            if kids:
                return int(kids[0])
        time.sleep(0.1)
    raise AssertionError("the tracer never started its command")


def test_signals_are_forwarded_and_children_reaped() -> None:
    proc = subprocess.Popen([*SYSWEAVE, "trace", "--no-store", "-o", "/dev/null", "--", "sleep", "30"])
    child = _wait_for_child(proc.pid)
    time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 128 + signal.SIGTERM
    assert not os.path.exists(f"/proc/{child}") or Path(f"/proc/{child}/stat").read_text().split()[2] == "Z"


def test_attach_to_pid_and_detach_without_killing(tmp_path) -> None:
    target = subprocess.Popen(["sh", "-c", f"while :; do echo x > {tmp_path}/f; sleep 0.05; done"])
    try:
        tracer = subprocess.Popen([*SYSWEAVE, "trace", "--no-store", "-f", "-c", "--format", "json", "-p", str(target.pid)],
                                  stdout=subprocess.PIPE, text=True)
        time.sleep(5)
        tracer.send_signal(signal.SIGINT)
        out, _ = tracer.communicate(timeout=30)
        doc = json.loads(out.strip().splitlines()[-1])
        assert {r["syscall"] for r in doc["summary"]} >= {"wait4", "openat"}
        assert target.poll() is None  # detached, still running
    finally:
        target.kill()
        target.wait()


def test_trace_is_stored_and_queryable(tmp_path) -> None:
    store = str(tmp_path / "store")
    r = sysweave("trace", "--store", store, "--label", "stored-run", "-o", "/dev/null", "--", "ls", "/")
    assert r.returncode == 0, r.stderr
    q = sysweave("query", "--store", store, "--format", "json",
                 "SELECT t.label, sum(a.calls) AS calls FROM traces AS t JOIN syscall_aggregates AS a USING trace_id "
                 "GROUP BY t.label")
    rows = json.loads(q.stdout)["data"]
    assert rows[0]["label"] == "stored-run" and int(rows[0]["calls"]) > 20


def test_dump_bpf_prints_the_program() -> None:
    r = sysweave("trace", "--dump-bpf")
    assert r.returncode == 0 and "RAW_TP(sys_enter)" in r.stdout and "-DPAYLOAD_CAP=4096" in r.stdout
    assert "// loader on this host: libbpf" in r.stdout and "payload_cap=4096" in r.stdout


# Runs argv as its child and writes that child's wait4 ru_maxrss (KiB) to the file argv[1] names. The kernel
# keeps the largest RSS of a process's images before exec (signal->maxrss), and a child forked from this test
# process starts with a copy of it (1.2 GB after some tests in random order, chdb loaded): the child of this
# small interpreter starts from its ~10 MB instead.
_MEASURE = """import os, sys
pid = os.fork()
if pid == 0:
    os.execvp(sys.argv[2], sys.argv[2:])
_, status, usage = os.wait4(pid, 0)
with open(sys.argv[1], "w") as f:
    f.write(str(usage.ru_maxrss))
sys.exit(os.waitstatus_to_exitcode(status) % 256)
"""


def _run_measured(*args: str) -> tuple[subprocess.CompletedProcess[str], int]:
    """Run sysweave; return the result and its peak RSS in KiB (the tracer and what it reaped)."""
    with tempfile.TemporaryDirectory() as tmp:
        rss_file = os.path.join(tmp, "maxrss")
        r = subprocess.run([sys.executable, "-c", _MEASURE, rss_file, *SYSWEAVE, *args], capture_output=True,
                           text=True, timeout=600)
        with open(rss_file) as f:
            return r, int(f.read())


def test_a_thousand_children_counted_exactly_in_bounded_memory() -> None:
    r, rss = _run_measured("trace", "-f", "-c", "--format", "json", "--no-store", "--",
                           "sh", "-c", "i=0; while [ $i -lt 1000 ]; do /bin/true; i=$((i+1)); done")
    assert r.returncode == 0 and r.stdout.strip(), r.stderr[-3000:]
    doc = json.loads(r.stdout.strip().splitlines()[-1])
    calls = {row["syscall"]: row["calls"] for row in doc["summary"]}
    assert calls["execve"] == 1001 and doc["lost_events"] == 0
    assert rss < 1_000_000, f"tracer peak RSS {rss} KiB"


def test_ten_gigabytes_of_writes_in_bounded_memory() -> None:
    r, rss = _run_measured("trace", "-c", "--observable", "--format", "json", "--no-store", "--",
                           "dd", "if=/dev/zero", "of=/dev/null", "bs=1M", "count=10240")
    assert r.returncode == 0 and r.stdout.strip(), r.stderr[-3000:]
    doc = json.loads(r.stdout.strip().splitlines()[-1])
    calls = {row["syscall"]: row["calls"] for row in doc["summary"]}
    assert calls["write"] >= 10240 and doc["exit_code"] == 0
    assert rss < 1_000_000, f"tracer peak RSS {rss} KiB"


def test_live_progress_only_on_a_terminal(tmp_path) -> None:
    typescript = tmp_path / "tty.log"
    cmd = " ".join([*SYSWEAVE, "trace", "-c", "--no-store", "-o", str(tmp_path / "out.txt"), "--", "sleep", "2"])
    subprocess.run(["script", "-qfc", cmd, str(typescript)], check=True, timeout=120, capture_output=True)
    assert "events (" in typescript.read_text(errors="replace")  # the live line, on a pty
    plain = sysweave("trace", "-c", "--no-store", "-o", str(tmp_path / "out2.txt"), "--", "sleep", "1")
    assert "events (" not in plain.stderr  # not on a pipe
