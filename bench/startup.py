"""Start-up of ``sysweave trace -c -- true`` (issue 12's target: <= 0.5 s), side by side in one run:

  strace -c true | sysweave trace -c (the default: the CO-RE object through libbpf) | the bcc fallback
  (SYSWEAVE_BPF_LOADER=bcc) with its program cached in bpffs | the same compiling (SYSWEAVE_BPF_CACHE=0)
  | --backend ptrace

and where a start's time goes (Python imports, loading or opening + attaching the program, the run).
Rows are interleaved run by run (the machine's load drifts); medians of wall and of CPU (user + sys of
the command and its children).  Python's bytecode cache matters (~0.1 s of imports): the environment here
sets PYTHONDONTWRITEBYTECODE=1, so the default row runs both as the environment has it and with a bytecode
cache (PYTHONPYCACHEPREFIX in a temporary directory, warmed once); the other rows with it.

And start-up as a fresh host sees it (issue 15), in a private mount namespace per sample so the host is
untouched, with an empty /run/sysweave as after a boot: the first run on a fresh, empty bpffs (the first
trace after a boot where systemd mounted it), the first run where bpffs is not mounted at all (capture
mounts it), and the run after either in the same namespace (warm) -- for the default loader with the
store off and on (the default; an empty store in a temporary directory), and for the bcc fallback, whose
program cache is what bpffs holds.

And start-up with function probes (``--uprobe``, issue 18): one libc function, and a regex that matches 59
(``c:/^str/``), for the default (uprobes.bpf.o through libbpf, uprobe_multi links) and the bcc fallback
(its syscall program cached in bpffs; the function-probe program compiles at every start).
``python bench/startup.py RUNS uprobes`` runs only those rows.

    python bench/startup.py [RUNS] [uprobes]
"""

from __future__ import annotations

import json
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


# Runs in a new mount namespace (unshare -m): bpffs as a fresh host has it, then the command twice, timed.
_FRESH_HOST = r"""
import json, os, resource, subprocess, sys, time
bpffs, argv = sys.argv[1], sys.argv[2:]
subprocess.run(["umount", "/sys/fs/bpf"], stderr=subprocess.DEVNULL)
os.makedirs("/run/sysweave", exist_ok=True)  # /run is empty after a boot: no cache locks held by anyone
subprocess.run(["mount", "-t", "tmpfs", "tmpfs", "/run/sysweave"], check=True)
if bpffs == "fresh":
    subprocess.run(["mount", "-t", "bpf", "bpf", "/sys/fs/bpf"], check=True)
out = []
for _ in range(2):
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    out.append((wall, after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime))
print(json.dumps(out))
"""


def fresh_host(bpffs: str, argv: list[str], env: dict[str, str]) -> list[tuple[float, float]]:
    """[(wall, cpu) of the first run, of the second] in a private mount namespace where bpffs is ``fresh``
    (mounted, empty) or ``none`` (not mounted)."""
    res = subprocess.run(["unshare", "-m", PY, "-c", _FRESH_HOST, bpffs, *argv], env=env, capture_output=True,
                         text=True, check=True)
    return [(w, c) for w, c in json.loads(res.stdout)]


FRESH = (("fresh", "fresh empty bpffs (after a boot)"), ("none", "bpffs not mounted (capture mounts it)"))


def fresh_host_sessions(trace_env: dict[str, str], store: str) -> dict[str, tuple[list[str], dict[str, str]]]:
    """What runs in a fresh namespace: {label: (argv, env)}."""
    bcc = trace_env | {"SYSWEAVE_BPF_LOADER": "bcc"}
    return {"default, --no-store": (TRACE, trace_env),
            "default, store on (empty store)": ([a for a in TRACE if a != "--no-store"], trace_env | {"SYSWEAVE_STORE": store}),
            "bcc fallback, --no-store": (TRACE, bcc)}


def sample_fresh_host(sessions: dict[str, tuple[list[str], dict[str, str]]],
                      samples: dict[str, list[tuple[float, float]]]) -> None:
    """One sample of every fresh-host row: a namespace per (session, bpffs state), first run and second."""
    for label, (argv, env) in sessions.items():
        for bpffs, state in FRESH:
            cold, warm = fresh_host(bpffs, argv, env)
            samples.setdefault(f"fresh host, {label}: first run, {state}", []).append(cold)
            samples.setdefault(f"fresh host, {label}: second run after it ({bpffs})", []).append(warm)


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


UPROBES = {"1 function (c:getpid)": "c:getpid", "59 functions (c:/^str/)": "c:/^str/"}


def uprobe_rows(default: dict[str, str], bcc: dict[str, str]) -> dict[str, tuple[list[str], dict[str, str]]]:
    """``sysweave trace -c --uprobe SPEC -- true`` per loader and probe count."""
    rows = {"no --uprobe (the baseline), default": (TRACE, default)}
    for label, spec in UPROBES.items():
        argv = [*TRACE[:4], "--uprobe", spec, *TRACE[4:]]
        rows[f"--uprobe {label}, default (uprobes.bpf.o, libbpf)"] = (argv, default)
        rows[f"--uprobe {label}, bcc fallback (compiles the probe program)"] = (argv, bcc)
    return rows


_UPROBE_PHASES = """
import os, sys, time
from sysweave.agents.bpf.syscalls import ProbeConfig, SyscallProbe
from sysweave.agents.bpf.uprobes import UprobeConfig, UprobeProgram, resolve_probes
from sysweave.agents.bpf.uprobes_spec import parse_spec
sp = SyscallProbe(ProbeConfig())
probes = resolve_probes([parse_spec(sys.argv[2])], None)
t0 = time.perf_counter()
up = UprobeProgram(probes, sp, UprobeConfig(attach=sys.argv[1]))
t1 = time.perf_counter()
up.close()
t2 = time.perf_counter()
sp.close()
print(f"{len(probes)} functions, attach={sys.argv[1]}: load + attach {t1 - t0:.3f} s | close {t2 - t1:.3f} s")
"""


def uprobe_phases(env: dict[str, str]) -> list[str]:
    """The function-probe object's load + attach and close, per attach mode (uprobes_core.py)."""
    return [subprocess.run([PY, "-c", _UPROBE_PHASES, mode, "c:/^mem/"], env=env | {"SYSWEAVE_BPF_LOADER": "libbpf"},
                           capture_output=True, text=True, check=True).stdout.strip() for mode in ("multi", "each")]


def main(runs: int = 7, only: str = "") -> None:
    base = dict(os.environ)
    pyc = tempfile.mkdtemp(prefix="sysweave-pyc-")
    with_pyc = {k: v for k, v in base.items() if k != "PYTHONDONTWRITEBYTECODE"} | {"PYTHONPYCACHEPREFIX": pyc}
    bcc = with_pyc | {"SYSWEAVE_BPF_LOADER": "bcc"}
    envs = {"as is": base, "bytecode cached": with_pyc}
    rows: dict[str, tuple[list[str], dict[str, str]]] = {"strace -c true": (["strace", "-c", "-o", "/dev/null", "true"], base)}
    for label, env in envs.items():
        rows[f"sysweave trace -c (default: CO-RE object, libbpf), {label}"] = (TRACE, env)
    rows["sysweave trace -c, bcc fallback, program cached in bpffs"] = (TRACE, bcc)
    rows["sysweave trace -c, bcc fallback, compiling (SYSWEAVE_BPF_CACHE=0)"] = (TRACE, bcc | {"SYSWEAVE_BPF_CACHE": "0"})
    rows["sysweave trace -c --backend ptrace"] = ([*TRACE[:4], "--backend", "ptrace", *TRACE[4:]], with_pyc)
    rows.update(uprobe_rows(with_pyc, bcc))
    if only == "uprobes":
        rows = uprobe_rows(with_pyc, bcc)
    for argv, env in rows.values():
        timed(argv, env)  # warm: the program cache, the bytecode cache, the page cache
    sessions = fresh_host_sessions(with_pyc, tempfile.mkdtemp(prefix="sysweave-store-"))
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in rows}
    loads = []
    for _ in range(runs):
        for name, (argv, env) in rows.items():
            samples[name].append(timed(argv, env))
        if only != "uprobes":
            sample_fresh_host(sessions, samples)
        loads.append(os.getloadavg()[0])
    print(f"start-up, median of {runs} interleaved runs, {os.cpu_count()} CPUs, load average "
          f"{min(loads):.1f}-{max(loads):.1f}")
    print(f"{'row':92} {'wall s':>8} {'cpu s':>8}")
    for name, s in samples.items():
        print(f"{name:92} {statistics.median(w for w, _ in s):8.3f} {statistics.median(c for _, c in s):8.3f}")
    for label, env in (*envs.items(), ("bcc fallback", bcc)) if only != "uprobes" else ():
        print(f"phases ({label}): {phases(env)}")
    for line in uprobe_phases(with_pyc):
        print(f"phases (function probes): {line}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 7, *sys.argv[2:3])
