from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from sysweave.agents.proctree import unblock_signals

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
SYSWEAVE = [sys.executable, "-m", "sysweave.cli.main"]


@pytest.fixture(scope="session")
def workload_bin(tmp_path_factory: pytest.TempPathFactory) -> str:
    out = tmp_path_factory.mktemp("bin") / "workload"
    subprocess.run(["cc", "-O1", "-pthread", "-o", str(out), str(FIXTURES / "workload.c")], check=True)
    return str(out)


def sysweave(*args: str, check: bool = False, timeout: float = 120, **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*SYSWEAVE, *args], capture_output=True, text=True, timeout=timeout, check=check, **kw)  # type: ignore[call-overload]


def strace_counts(argv: list[str], cwd: str | None = None, env: dict[str, str] | None = None) -> dict[str, tuple[int, int]]:
    """strace -f -c's table as {syscall: (calls, errors)}. strace starts with no signal blocked, as sysweave starts
    a command (``proctree.unblock_signals``): a mask this test process picked up (``import chdb`` blocks SIGPIPE)
    would reach the program, and Python's subprocess then skips a sigaction per blocked signal in each child."""
    out = subprocess.run(["strace", "-f", "-c", "-o", "/dev/stdout", "--", *argv], capture_output=True, text=True,
                         cwd=cwd, env=env, check=False, preexec_fn=unblock_signals).stdout
    counts: dict[str, tuple[int, int]] = {}
    for line in out.splitlines():
        m = re.match(r"^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(\d+)?\s*(\w+)$", line)
        if m and m.group(3) != "total":
            counts[m.group(3)] = (int(m.group(1)), int(m.group(2) or 0))
    return counts


# Counts that follow thread scheduling, not the program: strace's and sysweave's runs may differ in them.
SCHEDULING_DEPENDENT = {
    "futex": "pthread_join (and Python's waiter) blocks in futex only if the other thread has not finished yet; "
             "strace slows threads down, so it sees more waits",
}


def comparable(counts: dict[str, tuple[int, int]]) -> dict[str, tuple[int, int]]:
    """``counts`` without the SCHEDULING_DEPENDENT calls (the reasons are next to them)."""
    return {k: v for k, v in counts.items() if k not in SCHEDULING_DEPENDENT}


def sysweave_counts(argv: list[str], *extra: str, cwd: str | None = None,
                    env: dict[str, str] | None = None) -> tuple[dict[str, tuple[int, int]], dict]:
    res = sysweave("trace", "-f", "-c", "--format", "json", "--no-store", *extra, "--", *argv, cwd=cwd, env=env)
    doc = json.loads(res.stdout.strip().splitlines()[-1])
    return {r["syscall"]: (r["calls"], r["errors"]) for r in doc["summary"]}, doc


def env_without_pyc() -> dict[str, str]:
    return {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
