"""A child's exit status from the kernel's exit record (issue 17.5): a child killed by a signal no traced process
sent (a segmentation fault), reaped with a NULL status pointer, still has its signal compared."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.bpf, pytest.mark.usefixtures("bpf_ready")]

SYSWEAVE = [sys.executable, "-m", "sysweave.cli.main"]
CHILD = r"""
#include <unistd.h>
int main(int argc, char **argv) {
#ifdef SEGV
    *(volatile long *)8 = 1;  /* SIGSEGV from the kernel: no kill() anywhere */
#else
    __builtin_trap();  /* SIGILL from the kernel (ud2) */
#endif
}
"""
PARENT = r"""
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>
int main(int argc, char **argv) {
    if (fork() == 0) {
        execl(CHILD, "child", (char *)0);
        _exit(127);
    }
    wait(NULL);  /* the status is not asked for: only the kernel's exit record has it */
    puts("parent done");
    return 0;
}
"""


def _build(tmp: Path, name: str, src: str, *flags: str) -> Path:
    (tmp / f"{name}.c").write_text(src)
    subprocess.run(["cc", "-O0", "-w", *flags, "-o", str(tmp / name), str(tmp / f"{name}.c")], check=True)
    return tmp / name


def test_signal_of_a_child_reaped_with_null_status(tmp_path: Path) -> None:
    faulting = _build(tmp_path, "faulting", CHILD, "-DSEGV")
    exiting = _build(tmp_path, "exiting", CHILD)  # SIGILL: as unknown as SIGSEGV without the exit record
    a = _build(tmp_path, "a", PARENT, f'-DCHILD="{faulting}"')
    b = _build(tmp_path, "b", PARENT, f'-DCHILD="{exiting}"')
    r = subprocess.run([*SYSWEAVE, "validate", "--original", str(a), "--transpiled", str(b), "--json", "--no-store"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 1, r.stdout + r.stderr
    report = json.loads(r.stdout)
    text = json.dumps(report)
    assert "SIGSEGV" in text and "SIGILL" in text, text[:2000]
