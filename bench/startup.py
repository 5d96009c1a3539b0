"""Start-up of ``sysweave trace -c -- true`` (issue 12's target: <= 0.5 s), side by side in one run:

  strace -c true | sysweave trace -c, program cached in bpffs | the same compiling (SYSWEAVE_BPF_CACHE=0)
  | --backend ptrace

and where a cached start's time goes (Python imports, opening + attaching the pinned program, the run).
Rows are interleaved run by run (the machine's load drifts); medians of wall and of CPU (user + sys of
the command and its children).  Python's bytecode cache matters (~0.1 s of imports): the environment here
sets PYTHONDONTWRITEBYTECODE=1, so each row runs both as the environment has it and with a bytecode cache
(PYTHONPYCACHEPREFIX in a temporary directory, warmed once).

    python bench/startup.py [RUNS]
"""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

PY = sys.executable
TRACE = [PY, "-m", "sysweave.cli.main", "trace", "-c", "--no-store", "-o", "/dev/null", "--", "true"]


def timed(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall s, cpu s) of one run."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def phases(env: dict[str, str]) -> str:
    """Inside one cached start: imports, probe open + attach, a traced `true`, close (one process)."""
    code = """
import time
t0 = time.perf_counter()
import sysweave.cli.trace
from sysweave.agents.bpf.syscalls import ProbeConfig, SyscallProbe
from sysweave.agents.session import CaptureOptions, EbpfCapture
t1 = time.perf_counter()
probe = SyscallProbe(ProbeConfig())
t2 = time.perf_counter()
cap = EbpfCapture(CaptureOptions(), lambda e: None, probe=probe)
cap.run_command(["true"])
t3 = time.perf_counter()
probe.close()
t4 = time.perf_counter()
print(f"imports {t1 - t0:.3f} s | probe ({probe.origin}) {t2 - t1:.3f} s | run {t3 - t2:.3f} s | close {t4 - t3:.3f} s")
"""
    return subprocess.run([PY, "-c", code], env=env, capture_output=True, text=True, check=True).stdout.strip()


def main(runs: int = 7) -> None:
    base = dict(os.environ)
    pyc = tempfile.mkdtemp(prefix="sysweave-pyc-")
    with_pyc = {k: v for k, v in base.items() if k != "PYTHONDONTWRITEBYTECODE"} | {"PYTHONPYCACHEPREFIX": pyc}
    envs = {"as is": base, "bytecode cached": with_pyc}
    rows: dict[str, tuple[list[str], dict[str, str]]] = {"strace -c true": (["strace", "-c", "-o", "/dev/null", "true"], base)}
    for label, env in envs.items():
        rows[f"sysweave trace -c, cached program, {label}"] = (TRACE, env)
    rows["sysweave trace -c, compiling, bytecode cached"] = (TRACE, with_pyc | {"SYSWEAVE_BPF_CACHE": "0"})
    rows["sysweave trace -c --backend ptrace"] = ([*TRACE[:4], "--backend", "ptrace", *TRACE[4:]], with_pyc)
    for argv, env in rows.values():
        timed(argv, env)  # warm: the program cache, the bytecode cache, the page cache
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in rows}
    for _ in range(runs):
        for name, (argv, env) in rows.items():
            samples[name].append(timed(argv, env))
    load = os.getloadavg()[0]
    print(f"start-up, median of {runs} interleaved runs, {os.cpu_count()} CPUs, load average {load:.1f}")
    print(f"{'row':52} {'wall s':>8} {'cpu s':>8}")
    for name, s in samples.items():
        print(f"{name:52} {statistics.median(w for w, _ in s):8.3f} {statistics.median(c for _, c in s):8.3f}")
    for label, env in envs.items():
        print(f"phases ({label}): {phases(env)}")


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:]))
