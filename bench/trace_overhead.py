"""Capture overhead, side by side in one run (issue 3's targets):

  untraced | empty BPF floor | sysweave trace -c | sysweave trace (default sampling, -o file) | bcc syscount -L
  | strace -f -c

Workload 1: dd if=/dev/zero of=/dev/null bs=1 count=N (2 syscalls per byte). Each row's time is dd's own
reported copy time, so tracer start-up (BPF compile, ~2 s) is excluded, as it is from the per-syscall cost.
Workload 2: bench/realistic.py on eight stdlib package trees (its own elapsed time).
Prints medians of R runs, added ns per syscall, the ratio to the floor, and lost events per row.
"""

from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
SYSWEAVE = [PY, "-m", "sysweave.cli.main", "trace", "--no-store"]
_DD = re.compile(r"copied, ([\d.]+) s")


def dd_argv(n: int) -> list[str]:
    return ["dd", "if=/dev/zero", "of=/dev/null", "bs=1", f"count={n}"]


def timed(prefix: list[str], argv: list[str], parse: re.Pattern[str]) -> tuple[float, int, str]:
    """(workload seconds, lost events, tracer output) for one run."""
    with tempfile.NamedTemporaryFile("r", suffix=".out") as out:
        cmd = [*prefix, *argv]
        cmd = [c.replace("@OUT@", out.name) for c in cmd]
        res = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, check=False)
        text = out.read()
    m = parse.search(res.stderr)
    if not m:
        raise RuntimeError(f"no timing in output of {' '.join(cmd)}:\n{res.stderr[-2000:]}")
    lost = 0
    for blob in (text, res.stdout, res.stderr):
        if lm := re.search(r"LOST ([\d,]+) events", blob):
            lost = int(lm.group(1).replace(",", ""))
        for line in blob.splitlines():
            if line.startswith("{") and '"lost_events"' in line:
                lost = json.loads(line)["lost_events"]
    return float(m.group(1)), lost, text


def median_run(prefix: list[str], argv: list[str], parse: re.Pattern[str], runs: int) -> tuple[float, int]:
    samples = [timed(prefix, argv, parse) for _ in range(runs)]
    return statistics.median(s[0] for s in samples), max(s[1] for s in samples)


ROWS = {
    "untraced": [],
    "empty BPF floor": [PY, str(ROOT / "bench" / "floor.py"), "--"],
    "sysweave trace -c": [*SYSWEAVE, "-f", "-c", "--format", "json", "-o", "@OUT@", "--"],
    "sysweave trace (default)": [*SYSWEAVE, "-f", "-o", "@OUT@", "--"],
    # the same program through the bcc fallback: its call start in task storage at both ends (the CO-RE build
    # keeps it per CPU and moves it to task storage only when the task is switched out mid-call)
    "sysweave trace -c (bcc fallback)": ["env", "SYSWEAVE_BPF_LOADER=bcc", *SYSWEAVE, "-f", "-c", "--format", "json",
                                         "-o", "@OUT@", "--"],
    "bcc syscount -L": [PY, str(ROOT / "bench" / "syscount_run.py"), "--"],
    "strace -f -c": ["strace", "-f", "-c", "-o", "@OUT@", "--"],
}
# The sampling threshold's cost at each setting (what the adaptive controller moves between).
SAMPLING_ROWS = {
    "default, --slow-us 1": [*SYSWEAVE, "-f", "--slow-us", "1", "-o", "@OUT@", "--"],
    "default, --slow-us 10": [*SYSWEAVE, "-f", "--slow-us", "10", "-o", "@OUT@", "--"],
    "default, --slow-us 1000": [*SYSWEAVE, "-f", "--slow-us", "1000", "-o", "@OUT@", "--"],
    "--no-sampling (every call)": [*SYSWEAVE, "-f", "--no-sampling", "-o", "@OUT@", "--"],
}


def sampling_settings(n: int = 200_000, runs: int = 3) -> None:
    """Added ns per call and lost events at each sampling setting (dd bs=1, 2n syscalls)."""
    base = median_run([], dd_argv(n), _DD, runs)[0]
    print(f"\nsampling settings: dd bs=1 count={n:,}, median of {runs}")
    for name, prefix in SAMPLING_ROWS.items():
        t, lost = median_run(prefix, dd_argv(n), _DD, runs)
        print(f"{name:28} {t:8.3f} s  +{(t - base) / (2 * n) * 1e9:6.0f} ns/call  lost {lost}")


_CPU = re.compile(r"cpu ([\d.]+) ([\d.]+)")


def per_call_cpu(n: int = 500_000, runs: int = 7) -> dict[str, float]:
    """Added ns per call from dd's own CPU time (user + sys, where the BPF programs run), rows interleaved.

    On a shared 2-vCPU VM dd's wall time swings +-50 % with other load; its CPU time moves far less."""
    rows = {k: ROWS[k] for k in ("untraced", "empty BPF floor", "sysweave trace -c", "sysweave trace (default)",
                                 "sysweave trace -c (bcc fallback)", "bcc syscount -L")}
    argv = ["/usr/bin/time", "-f", "cpu %U %S", *dd_argv(n)]
    samples: dict[str, list[float]] = {k: [] for k in rows}
    for _ in range(runs):
        for name, prefix in rows.items():
            cmd = [c.replace("@OUT@", "/dev/null") for c in [*prefix, *argv]]
            err = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, check=False).stderr
            m = _CPU.search(err)
            if not m:
                raise RuntimeError(f"no CPU time from {' '.join(cmd)}:\n{err[-2000:]}")
            samples[name].append(float(m.group(1)) + float(m.group(2)))
    base = statistics.median(samples["untraced"])
    added = {k: (statistics.median(v) - base) / (2 * n) * 1e9 for k, v in samples.items()}
    floor = added["empty BPF floor"]
    print(f"\nper call from dd's CPU time: dd bs=1 count={n:,}, median of {runs} interleaved, "
          f"load average {os.getloadavg()[0]:.1f}")
    syscount = added["bcc syscount -L"]
    for name, ns in added.items():
        ratio = f"{ns / floor:6.2f}x floor" if floor > 0 and name != "untraced" else ""
        vs = f"{ns / syscount:5.2f}x syscount -L" if syscount > 0 and name.startswith("sysweave") else ""
        print(f"{name:28} cpu {statistics.median(samples[name]):6.3f} s  +{ns:5.0f} ns/call  {ratio}  {vs}")
    return added


def main(n: int = 1_000_000, runs: int = 5, strace_n: int = 50_000) -> None:
    syscalls = 2 * n
    print(f"workload: dd bs=1 count={n:,} ({syscalls:,} syscalls); median of {runs} runs; strace with count={strace_n:,}")
    results: dict[str, tuple[float, float, int]] = {}
    base_small = median_run([], dd_argv(strace_n), _DD, runs)[0]
    for name, prefix in ROWS.items():
        if name.startswith("strace"):
            t, lost = median_run(prefix, dd_argv(strace_n), _DD, max(runs // 2, 1))
            added = (t - base_small) / (2 * strace_n) * 1e9
        else:
            t, lost = median_run(prefix, dd_argv(n), _DD, runs)
            added = (t - results["untraced"][0]) / syscalls * 1e9 if name != "untraced" else 0.0
        results[name] = (t, added, lost)
    floor = results["empty BPF floor"][1]
    print(f"{'row':28} {'dd s':>8} {'+ns/call':>9} {'x floor':>8} {'calls/s':>12} {'lost':>6}")
    for name, (t, added, lost) in results.items():
        rate = (2 * (strace_n if name.startswith("strace") else n)) / t
        ratio = f"{added / floor:8.2f}" if floor > 0 and name != "untraced" else f"{'':8}"
        print(f"{name:28} {t:8.3f} {added:9.0f} {ratio} {rate:12,.0f} {lost:6}")
    per_call_cpu()
    realistic(runs)
    sampling_settings()


def realistic(runs: int) -> None:
    """Rows interleaved run by run (filesystem state drifts over a run); temp files on tmpfs."""
    parse = re.compile(r"elapsed ([\d.]+)")
    stdlib = Path(os.__file__).parent
    trees = [str(stdlib / d) for d in ("email", "asyncio", "unittest", "json", "xml", "logging", "importlib", "concurrent")]
    argv = [PY, str(ROOT / "bench" / "realistic.py"), *trees]
    names = ("untraced", "sysweave trace -c", "sysweave trace (default)")
    os.environ["TMPDIR"] = "/dev/shm" if os.path.isdir("/dev/shm") else tempfile.gettempdir()
    samples: dict[str, list[tuple[float, int, str]]] = {n: [] for n in names}
    for _ in range(runs):
        for name in names:
            samples[name].append(timed(ROWS[name], argv, parse))
    base = statistics.median(s[0] for s in samples["untraced"])
    print(f"\nrealistic: tar+gzip+extract+read of 8 stdlib packages (Python, TMPDIR={os.environ['TMPDIR']}), "
          f"median of {runs}, rows interleaved")
    for name in names:
        t = statistics.median(s[0] for s in samples[name])
        print(f"{name:28} {t:8.3f} s  overhead {100 * (t / base - 1):6.1f}%  lost {max(s[1] for s in samples[name])}")


if __name__ == "__main__":
    if sys.argv[1:2] == ["per-call"]:  # only the per-call rows (CPU time), side by side: [N [RUNS]]
        per_call_cpu(*(int(a) for a in sys.argv[2:]))
    else:
        main(*(int(a) for a in sys.argv[1:]))
