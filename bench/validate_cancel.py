"""python -m bench cancel [N] -- issue 20: how fast `sysweave validate` stops after a signal, and what the
per-run containment and accounting (cgroup v2 per run, memory cgroup, watchdog) cost.

1. Stop time: `sysweave validate --json --no-store` on two hanging sides (one forks a setsid grandchild),
   SIGTERM once both run; time from the signal to validate's exit, and whether any process it started is
   left (pgrep). Target: <= 2 s, none left.
2. Containment cost: start and wait for `/bin/true` N times contained (agents.proctree.ProcessTree: cgroup
   made, joined, cpu.stat and memory peak read, removed) beside plain subprocess.Popen, in the same run.
Medians; the host load is printed beside them (2 shared cores: noisy).
"""

from __future__ import annotations

import os
import signal
import statistics
import subprocess
import sys
import time
import uuid

from sysweave.agents.proctree import ProcessTree

__all__ = ["main"]


def stop_time() -> tuple[float, int]:
    marker = f"{2000 + uuid.uuid4().int % 1000}.{os.getpid()}"
    p = subprocess.Popen([sys.executable, "-m", "sysweave.cli.main", "validate", "--json", "--no-store",
                          "--original", f"sh -c 'setsid sleep {marker} & sleep {marker}'", "--transpiled",
                          f"sleep {marker}"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)

    def left() -> list[str]:
        return subprocess.run(["pgrep", "-f", f"^sleep {marker}$"], capture_output=True, text=True).stdout.split()

    while len(left()) < 2:
        time.sleep(0.05)
    t0 = time.monotonic()
    p.send_signal(signal.SIGTERM)
    p.communicate()
    return time.monotonic() - t0, len(left())


def containment_cost(n: int) -> tuple[float, float]:
    plain, contained = [], []
    for _ in range(n):
        t0 = time.perf_counter()
        subprocess.Popen(["/bin/true"]).wait()
        plain.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        tree = ProcessTree.start(["/bin/true"])
        tree.popen.wait()
        tree.cpu_s()
        tree.peak_memory_kb()
        tree.close()
        contained.append(time.perf_counter() - t0)
    return statistics.median(plain), statistics.median(contained)


def main(n: int = 50) -> None:
    print(f"load: {os.getloadavg()}")
    stops = [stop_time() for _ in range(5)]
    print(f"stop after SIGTERM: median {statistics.median(s for s, _ in stops):.3f} s, max "
          f"{max(s for s, _ in stops):.3f} s over {len(stops)}; processes left: {sum(k for _, k in stops)}")
    plain, contained = containment_cost(n)
    print(f"start+wait /bin/true: plain Popen {plain * 1e3:.2f} ms, contained {contained * 1e3:.2f} ms "
          f"(+{(contained - plain) * 1e3:.2f} ms per run, {contained / plain:.2f}x), median of {n}")
