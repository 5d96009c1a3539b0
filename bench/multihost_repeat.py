"""The multi-host test bed's job, N times back to back, through the whole distributed path (issue 15): three
"hosts" (network namespaces, each in its own cgroup v2 directory), a node-style agent per host (``--cgroup``),
a real Faust worker, the validator service writing into the ClickHouse server. Per run: the job (a coordinator
on A, workers on B and C) and the time from the coordinator's exit until its 3-host trace can be loaded from
ClickHouse ("arrival"). No run may fail; arrival p50 / max are the figures (docs/benchmarks.md).

    python -m bench multihost [RUNS]      # default 10; needs root, Kafka and ClickHouse (make services-up)

The worker, the agents and the service start fresh, on topics of their own, just before the first run: the
first run is the "right after start-up" case.
"""

from __future__ import annotations

import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

__all__ = ["main"]

ROOT = Path(__file__).resolve().parents[1]
JOB = ROOT / "tests" / "fixtures" / "distributed_job.py"
SYSWEAVE = [sys.executable, "-m", "sysweave.cli.main"]
LINKS = {"B": ("10.78.1.1", "10.78.1.2"), "C": ("10.78.2.1", "10.78.2.2")}
KAFKA = os.environ.get("SYSWEAVE_TEST_KAFKA", "127.0.0.1:9092")
CLICKHOUSE = os.environ.get("SYSWEAVE_TEST_CLICKHOUSE", "127.0.0.1:9000")
ARRIVAL_LIMIT_S = 180.0
CGROUP2_ROOTS = ("/sys/fs/cgroup/unified", "/sys/fs/cgroup")


@contextlib.contextmanager
def _testbed() -> Iterator[tuple[dict[str, str], dict[str, Path]]]:
    sys.path.insert(0, str(ROOT))
    from tests.distributed.helpers import network_testbed

    # cgroup v2: /sys/fs/cgroup itself, or its "unified" hierarchy on a hybrid (v1 + v2) machine
    root = next((Path(r) for r in CGROUP2_ROOTS if (Path(r) / "cgroup.controllers").exists()), None)
    if root is None:
        raise SystemExit("no cgroup v2 hierarchy mounted (mount -t cgroup2 none /sys/fs/cgroup/unified)")
    tag = uuid.uuid4().hex[:6]
    cgroups = {h: root / f"sysweave-bench{h}-{tag}" for h in "ABC"}
    bed = network_testbed("mh", LINKS)
    ns = next(bed)
    try:
        for d in cgroups.values():
            d.mkdir()
        yield ns, cgroups
    finally:
        with contextlib.suppress(StopIteration):
            next(bed)
        for d in cgroups.values():
            for _ in range(100):
                try:
                    d.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.1)


def _on_host(netns: str, cgroup: Path, *cmd: str) -> subprocess.Popen[bytes]:
    script = f'echo $$ > {cgroup}/cgroup.procs && exec ip netns exec {netns} "$@"'
    return subprocess.Popen(["sh", "-c", script, "sh", *cmd], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def _wait_metrics(port: int, proc: subprocess.Popen[bytes], log: Path, timeout_s: float = 240) -> None:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise SystemExit(f"an agent exited: {log.read_text(errors='replace')[-2000:]}")
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2).read()
            return
        except OSError:
            time.sleep(0.5)
    raise SystemExit("an agent never served its metrics")


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _job(ns: dict[str, str], cgroups: dict[str, Path], out: Path) -> tuple[int, float]:
    """One job; (the coordinator's pid, monotonic time it exited)."""
    py = sys.executable
    workers = [_on_host(ns[h], cgroups[h], py, str(JOB), "worker", "7000", str(out / h)) for h in "BC"]
    time.sleep(1)
    coord = _on_host(ns["A"], cgroups["A"], py, str(JOB), "coordinator", "20", *(f"{LINKS[h][1]}:7000" for h in "BC"))
    for p in (coord, *workers):
        text, _ = p.communicate(timeout=180)
        if p.returncode != 0:
            raise SystemExit(f"the job failed: {text.decode()[-2000:]}")
    return coord.pid, time.monotonic()


def _arrival(svc: object, trace_id: str, since: float) -> float | None:
    """Seconds from ``since`` until the 3-host trace is loadable from ClickHouse (None: not within the limit)."""
    from sysweave.validator.service import ValidatorService

    assert isinstance(svc, ValidatorService)
    while time.monotonic() - since < ARRIVAL_LIMIT_S:
        svc.run_once(500)
        try:
            trace = svc.sink.load_trace(trace_id)
        except LookupError:
            continue
        if {h for h, _ in trace.processes} == {"A", "B", "C"}:
            return time.monotonic() - since
    return None


def _start(suffix: str, env: dict[str, str], ns: dict[str, str], cgroups: dict[str, Path],
           tmp: Path) -> tuple[list[subprocess.Popen[bytes]], subprocess.Popen[bytes]]:
    offsets = {"A": 0, "B": 5_000_000, "C": -3_000_000}
    worker = subprocess.Popen([*SYSWEAVE, "streams", "worker", "--kafka", KAFKA, "--grace-s", "3", "--join-wait-s",
                               "20", "--app-id", f"streams{suffix}", "--loglevel", "info"], stdout=subprocess.DEVNULL,
                              stderr=open(tmp / "worker.log", "wb"), env=env)  # noqa: SIM115 -- the worker's lifetime
    agents, ports = [], {}
    for h in "ABC":
        ports[h] = _free_port()
        agents.append(subprocess.Popen(
            [*SYSWEAVE, "agent", "--kafka", KAFKA, "--host-id", h, "--cgroup", str(cgroups[h]), "--netns", ns[h],
             "--clock-offset-ns", str(offsets[h]), "--observable", "--window-s", "1", "--metrics-port", str(ports[h]),
             "--spool", str(tmp / f"spool-{h}")], stdout=open(tmp / f"agent-{h}.log", "wb"),  # noqa: SIM115
            stderr=subprocess.STDOUT, env=env))
    try:
        for h, a in zip("ABC", agents):
            _wait_metrics(ports[h], a, tmp / f"agent-{h}.log")
    except BaseException:
        for p in (*agents, worker):
            p.kill()
            p.wait()
        raise
    return agents, worker  # ready: an agent sets its cgroup target before its metrics endpoint answers


def main(runs: int = 10) -> None:
    sys.path.insert(0, str(ROOT))
    from tests.distributed.helpers import create_topics, stop

    from sysweave.schemas import topics
    from sysweave.streams.buffer import trace_id_for
    from sysweave.validator.service import ValidatorService

    tag = uuid.uuid4().hex[:8]
    suffix, db = f"-bench-{tag}", f"bench_multihost_{tag}"
    env = {k: v for k, v in os.environ.items() if k != "SYSWEAVE_TRACE_LABEL"} | {"SYSWEAVE_TOPIC_SUFFIX": suffix}
    create_topics(KAFKA, suffix)
    svc = ValidatorService(KAFKA, f"clickhouse://{CLICKHOUSE}/{db}", group=f"validator{suffix}",
                           traces_topic=topics.TOPIC_TRACES + suffix, validation_topic=topics.TOPIC_VALIDATION + suffix,
                           dead_letter_topic=topics.TOPIC_DEAD_LETTER + suffix)
    svc.sink.migrate()
    arrivals: list[float | None] = []
    print(f"multihost: {runs} runs of the 3-host job (agents --cgroup, Faust worker, validator service -> "
          f"ClickHouse); load {' '.join(f'{x:.1f}' for x in os.getloadavg())}", flush=True)
    with _testbed() as (ns, cgroups), contextlib.ExitStack() as cleanup:
        tmp = Path(cleanup.enter_context(tempfile.TemporaryDirectory(prefix="sysweave-multihost-")))
        t0 = time.monotonic()
        agents, worker = _start(suffix, env, ns, cgroups, tmp)
        print(f"  started 3 agents and the worker in {time.monotonic() - t0:.0f} s", flush=True)
        try:
            for k in range(1, runs + 1):
                pid, ended = _job(ns, cgroups, tmp / f"run{k}")
                a = _arrival(svc, trace_id_for(topics.trace_key("A", pid)).hex(), ended)
                arrivals.append(a)
                print(f"  run {k}/{runs}: " + (f"3-host trace in ClickHouse {a:.1f} s after the job ended"
                                               if a is not None else f"NO 3-host trace after {ARRIVAL_LIMIT_S:.0f} s")
                      + f" (load {os.getloadavg()[0]:.1f})", flush=True)
                if a is None:  # what the worker said: the only witness of a lost join
                    log = (tmp / "worker.log").read_text(errors="replace").splitlines()[-40:]
                    print("\n".join(f"    worker: {line}" for line in log), flush=True)
        finally:
            for p in agents:
                stop(p)
            stop(worker)
            with contextlib.suppress(Exception):
                svc.sink.execute(f"DROP DATABASE IF EXISTS {db}")
            svc.close()
    got = [a for a in arrivals if a is not None]
    failed = len(arrivals) - len(got)
    print(f"multihost: {len(got)}/{len(arrivals)} runs arrived, {failed} failed; arrival p50 "
          f"{statistics.median(got) if got else float('nan'):.1f} s, max {max(got) if got else float('nan'):.1f} s")
    if failed:
        sys.exit(1)
