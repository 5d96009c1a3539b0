"""Per-call cost of a function probe (``--uprobe``), side by side in one run: the default loader (uprobes.bpf.o
through libbpf, uprobe_multi links) and the bcc fallback (perf-event uprobes), against the same trace without
the probe.

The workload is tests/fixtures/uprobe_work.c's ``fast_step`` (a few ns of work), called N times.  Each row
runs ``sysweave trace -f -c --no-store -o /dev/null [--uprobe fast_step] -- WRAPPER uprobe_work N 0 0``; the
wrapper forks the workload and writes its CPU time (user + sys, from ``os.wait4``'s rusage), so sysweave's
start-up and the loaders' own work are not in the figure.  Rows interleaved run by run, medians; added ns per
call = (probed - unprobed) / N.

    python bench/uprobe_cost.py [N] [RUNS]
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

__all__ = ["main"]

PY = sys.executable
FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "fixtures"
# Runs the workload and prints its own CPU seconds (wait4's rusage: the traced program only).
_CHILD_CPU = ("import os, sys; pid = os.fork()\n"
              "if pid == 0: os.execv(sys.argv[1], sys.argv[1:])\n"
              "_, status, ru = os.wait4(pid, 0)\n"
              "open(os.environ['CPU_OUT'], 'w').write(str(ru.ru_utime + ru.ru_stime))\n"
              "sys.exit(os.waitstatus_to_exitcode(status))")


def build(tmp: Path) -> Path:
    lib, exe = tmp / "libuprobe_lib.so", tmp / "uprobe_work"
    subprocess.run(["cc", "-O1", "-shared", "-fPIC", "-o", str(lib), str(FIXTURES / "uprobe_lib.c")], check=True)
    subprocess.run(["cc", "-O1", "-fno-inline", "-o", str(exe), str(FIXTURES / "uprobe_work.c"), f"-L{tmp}",
                    "-luprobe_lib", f"-Wl,-rpath,{tmp}"], check=True)
    return exe


def child_cpu(argv: list[str], env: dict[str, str], out: Path) -> float:
    """The traced program's CPU seconds under ``sysweave trace ARGV``."""
    subprocess.run([PY, "-m", "sysweave.cli.main", "trace", "-f", "-c", "--no-store", "-o", "/dev/null",
                    *argv],
                   env=env | {"CPU_OUT": str(out)}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return float(out.read_text())


def main(n: int = 200_000, runs: int = 7) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="sysweave-uprobe-cost-"))
    exe = build(tmp)
    work = ["--", PY, "-c", _CHILD_CPU, str(exe), str(n), "0", "0"]
    base = {k: v for k, v in os.environ.items() if k != "SYSWEAVE_BPF_LOADER"}
    rows = {"no probe (default loader)": (work, base),
            "--uprobe fast_step, default (uprobes.bpf.o, libbpf)": (["--uprobe", f"{exe}:fast_step", *work], base),
            "--uprobe fast_step, bcc fallback": (["--uprobe", f"{exe}:fast_step", *work],
                                                 base | {"SYSWEAVE_BPF_LOADER": "bcc"})}
    samples: dict[str, list[float]] = {k: [] for k in rows}
    loads = []
    for _ in range(runs):
        for name, (argv, env) in rows.items():
            samples[name].append(child_cpu(argv, env, tmp / "cpu"))
        loads.append(os.getloadavg()[0])
    floor = statistics.median(samples["no probe (default loader)"])
    print(f"fast_step x {n:,}, traced program's CPU, median of {runs} interleaved runs, {os.cpu_count()} CPUs, "
          f"load average {min(loads):.1f}-{max(loads):.1f}")
    print(f"{'row':60} {'CPU s':>8} {'added ns/call':>14}")
    for name, s in samples.items():
        cpu = statistics.median(s)
        print(f"{name:60} {cpu:8.3f} {(cpu - floor) / n * 1e9:14.0f}")


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:3]))
