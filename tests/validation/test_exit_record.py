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


@pytest.fixture(params=["libbpf", "bcc"])
def loader(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Both captures: the CO-RE one reads the task's exit_code; the bcc fallback, which cannot trust the
    installed headers' task_struct layout, the signal tracepoints' stable formats."""
    monkeypatch.setenv("SYSWEAVE_BPF_LOADER", request.param)
    return str(request.param)


@pytest.mark.usefixtures("loader")
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


QUIET_DEATH = r"""
#include <signal.h>
#include <unistd.h>
int main(void) {
#ifdef PIPE
    int p[2];
    pipe(p);
    close(p[0]);
    write(p[1], "x", 1);  /* SIGPIPE from the kernel */
#else
    alarm(1);  /* SIGALRM from the kernel's timer */
#endif
    pause();
}
"""


@pytest.mark.usefixtures("loader")
def test_fatal_signal_of_the_kernels_fast_path(tmp_path: Path) -> None:
    """SIGPIPE and SIGALRM kill without a core dump: the kernel turns them into a SIGKILL for every thread
    (complete_signal), so the bcc capture takes the signal generated for the process, not the SIGKILL delivered."""
    piped = _build(tmp_path, "piped", QUIET_DEATH, "-DPIPE")
    alarmed = _build(tmp_path, "alarmed", QUIET_DEATH)
    a = _build(tmp_path, "a", PARENT, f'-DCHILD="{piped}"')
    b = _build(tmp_path, "b", PARENT, f'-DCHILD="{alarmed}"')
    c = _build(tmp_path, "c", PARENT, f'-DCHILD="{piped}"')
    r = subprocess.run([*SYSWEAVE, "validate", "--original", str(a), "--transpiled", str(b), "--json", "--no-store"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 1, r.stdout + r.stderr
    text = json.dumps(json.loads(r.stdout))
    assert "SIGPIPE" in text and "SIGALRM" in text and "SIGKILL" not in text, text[:2000]
    r = subprocess.run([*SYSWEAVE, "validate", "--original", str(a), "--transpiled", str(c), "--json", "--no-store"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
