"""The agent's target modes through the real broker: ``--pid`` (a running process), ``--all`` (every process on the
host but the agent) and ``--cgroup PATH`` (every process in a cgroup v2 directory). Each run ships the exact count of
a workload's stat() calls (aggregate windows); --pid and --cgroup also leave an identical, untargeted workload out."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from sysweave.schemas.events import HostInfo, SyscallAggregate, SyscallSpan

from .agent_helpers import SYSWEAVE, WORKLOAD, consume_events, free_port, make_topics, new_suffix, stat_calls, wait_metrics

pytestmark = [pytest.mark.bpf, pytest.mark.kafka]
N = 3000
CGROUP2_ROOTS = ("/sys/fs/cgroup/unified", "/sys/fs/cgroup")


class Workload:
    """A WORKLOAD process; ``burst()`` makes it stat() its marker N times and waits until it has."""

    def __init__(self, tmp: Path, name: str, prefix: list[str] | None = None) -> None:
        self.dir = tmp / name
        self.dir.mkdir()
        self.go, self.done, self.stop = self.dir / "go", self.dir / "done", self.dir / "stop"
        (self.dir / "marker").touch()  # successful, fast stat() calls: counted in the kernel, not shipped
        self.proc = subprocess.Popen([*(prefix or []), sys.executable, "-c", WORKLOAD, str(self.dir / "marker"),
                                      str(self.go), str(self.done), str(self.stop), str(N)])
        self.pid = self.proc.pid

    def burst(self) -> None:
        self.done.unlink(missing_ok=True)
        self.go.touch()
        end = time.monotonic() + 30
        while not self.done.exists():
            assert time.monotonic() < end and self.proc.poll() is None, "workload did not finish its burst"
            time.sleep(0.05)

    def finish(self) -> None:
        self.stop.touch()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def start_agent(bootstrap: str, suffix: str, tmp: Path, *mode: str, node_ip: str = "") -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    proc = subprocess.Popen([*SYSWEAVE, "agent", "--kafka", bootstrap, "--host-id", "modes", "--window-s", "1",
                             "--metrics-port", str(port), "--spool", str(tmp / f"spool-{uuid.uuid4().hex[:6]}"), *mode],
                            env={**os.environ, "SYSWEAVE_TOPIC_SUFFIX": suffix, "SYSWEAVE_NODE_IP": node_ip},
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wait_metrics(port, proc)
    time.sleep(1.0)  # targets are set right after the metrics endpoint starts
    return proc, port


def stop_agent(proc: subprocess.Popen[bytes]) -> str:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode in (0, -signal.SIGTERM, 143), err.decode()
    return err.decode()


@pytest.fixture
def topics_suffix(kafka_bootstrap: str) -> str:
    suffix = new_suffix()
    make_topics(kafka_bootstrap, suffix)
    return suffix


def test_pid_mode_traces_only_that_process(bpf_ready: None, kafka_bootstrap: str, topics_suffix: str, tmp_path: Path) -> None:
    target, other = Workload(tmp_path, "target"), Workload(tmp_path, "other")
    try:
        # as the chart without host networking: the node's address comes from the downward API
        agent, _ = start_agent(kafka_bootstrap, topics_suffix, tmp_path, "--pid", str(target.pid), node_ip="198.51.100.7")
        target.burst()
        other.burst()
        target.finish()  # --pid: the agent exits when its pids have
        err = stop_agent(agent)
    finally:
        target.finish()
        other.finish()
    events = consume_events(kafka_bootstrap, topics_suffix)
    assert stat_calls(events, target.pid) >= N, err
    assert not [e for e in events if e.h.pid == other.pid]
    hosts = [e for e in events if isinstance(e, HostInfo)]
    assert hosts and all("198.51.100.7" in h.addresses and "127.0.0.1" in h.addresses for h in hosts)


def test_all_mode_traces_every_process_but_itself(bpf_ready: None, kafka_bootstrap: str, topics_suffix: str,
                                                  tmp_path: Path) -> None:
    agent, _ = start_agent(kafka_bootstrap, topics_suffix, tmp_path, "--all")
    a, b = Workload(tmp_path, "a"), Workload(tmp_path, "b")  # started after the agent: not its children
    try:
        a.burst()
        b.burst()
    finally:
        a.finish()
        b.finish()
        err = stop_agent(agent)
    events = consume_events(kafka_bootstrap, topics_suffix, timeout_s=120)
    assert stat_calls(events, a.pid) >= N and stat_calls(events, b.pid) >= N, err
    own = [e for e in events if isinstance(e, SyscallSpan | SyscallAggregate) and e.h.pid == agent.pid]
    assert not own, own[:3]


@pytest.fixture
def cgroup_dir() -> Iterator[Path]:
    root = next((Path(r) for r in CGROUP2_ROOTS if (Path(r) / "cgroup.procs").exists()
                 and (Path(r) / "cgroup.controllers").exists()), None)
    if root is None:
        pytest.fail("no cgroup v2 hierarchy mounted (mount -t cgroup2 none /sys/fs/cgroup/unified)", pytrace=False)
    path = root / f"sysweave-test-{uuid.uuid4().hex[:8]}"
    path.mkdir()
    yield path
    for _ in range(50):
        try:
            path.rmdir()
            break
        except OSError:  # processes still leaving
            time.sleep(0.1)


def test_cgroup_mode_traces_the_cgroup_only(bpf_ready: None, kafka_bootstrap: str, topics_suffix: str, tmp_path: Path,
                                            cgroup_dir: Path) -> None:
    agent, _ = start_agent(kafka_bootstrap, topics_suffix, tmp_path, "--cgroup", str(cgroup_dir))
    # the shell joins the cgroup, then execs the workload (same pid)
    inside = Workload(tmp_path, "inside", ["sh", "-c", f'echo $$ > {cgroup_dir}/cgroup.procs && exec "$@"', "sh"])
    outside = Workload(tmp_path, "outside")
    try:
        inside.burst()
        outside.burst()
        assert str(inside.pid) in (cgroup_dir / "cgroup.procs").read_text().split()
    finally:
        inside.finish()
        outside.finish()
        err = stop_agent(agent)
    events = consume_events(kafka_bootstrap, topics_suffix)
    assert stat_calls(events, inside.pid) >= N, err
    assert not [e for e in events if e.h.pid == outside.pid]
