"""The childsignal race (issue 15): a child killed while its exec is still in progress is the program it was
exec'ing. posix_spawn (and Python's vfork-based Popen) return once the kernel has begun replacing the child's
image; when that image is not in the page cache, the exec blocks on I/O, the parent's kill(SIGTERM) lands
first, the exec fails (EFAULT: the new image's page fault could not complete) and the child dies without an
exec record. On a cold machine that made the first side's 'sleep 30' disappear and the verdict DIVERGENT."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from tests.validation.test_equivalence import W, exe, fork, h, sc, wait

from sysweave.schemas.events import ProcessEvent, ProcessEventType, SyscallSpan
from sysweave.validator.equivalence.compare import compare
from sysweave.validator.equivalence.observe import extract

SPAWN_KILL = r"""
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/wait.h>
extern char **environ;
/* spawn PROGRAM 30 and SIGTERM it at once, 5 times; with "cold", evict PROGRAM from the page cache first */
int main(int argc, char **argv) {
    char *args[] = {argv[1], "30", NULL};
    for (int i = 0; i < 5; i++) {
        if (argc > 2 && !strcmp(argv[2], "cold")) {
            int fd = open(argv[1], O_RDONLY);
            posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
            close(fd);
        }
        pid_t pid;
        if (posix_spawn(&pid, argv[1], NULL, NULL, args, environ)) return 1;
        kill(pid, SIGTERM);
        waitpid(pid, NULL, 0);
    }
    puts("stopped");
    return 0;
}
"""


def killed_child(exec_record: bool) -> list:
    """Process 10 spawns 11 ('sleep 30') and kills it; 11's exec completed (an exec record) or was cut short."""
    evs = [exe(("prog",)), fork(10, 11)]
    if exec_record:
        evs += [exe(("sleep", "30"), 11)]
    else:
        evs += [sc("execve", -14, 11, path="/usr/bin/sleep", argv=("sleep", "30"))]
    evs += [ProcessEvent(h(11), ProcessEventType.EXIT), wait(10, 11, None, 15),
            sc("write", 8, 10, b"stopped\n", fd=1)]
    return evs


def test_a_child_killed_inside_its_exec_is_the_program_it_was_execing() -> None:
    done, cut = (extract(killed_child(x), W, 10, b"stopped\n", b"", 0, home="/nonexistent") for x in (True, False))
    assert cut.programs is not None and [(c.role, c.signal) for c in cut.programs.children] == [(("sleep", "30"), 15)]
    assert compare(done, cut).verdict == "equivalent"


def test_a_failed_exec_the_process_survives_changes_nothing() -> None:
    """execvp trying a PATH entry that fails, then exiting 127: no program started (no signal death)."""
    evs = [exe(("prog",)), fork(10, 11), sc("execve", -14, 11, path="/x/sleep", argv=("sleep", "30")),
           sc("exit_group", 0, 11, status=127), ProcessEvent(h(11), ProcessEventType.EXIT, exit_code=127),
           wait(10, 11, 127)]
    obs = extract(evs, W, 10, b"", b"", 0, home="/nonexistent")
    assert obs.programs is not None and obs.programs.children == []


@pytest.mark.bpf
@pytest.mark.usefixtures("bpf_ready")
def test_spawn_then_kill_of_an_uncached_program_is_equivalent_to_a_cached_one(tmp_path: Path) -> None:
    from sysweave.cli.runner import EbpfRunner
    from sysweave.validator.equivalence.harness import Harness

    src = tmp_path / "spawnkill.c"
    src.write_text(SPAWN_KILL)
    prog, sleep = tmp_path / "spawnkill", tmp_path / "sleep"
    subprocess.run(["cc", "-O2", "-o", str(prog), str(src)], check=True)
    shutil.copy(shutil.which("sleep") or "/bin/sleep", sleep)
    harness = Harness(None, 60, EbpfRunner())
    try:
        cold = harness.run_side(f"{prog} {sleep} cold", 1)
        warm = harness.run_side(f"{prog} {sleep}", 1)
    finally:
        harness.close()
    evs = cold.runs[0].events
    execd = {e.h.pid for e in evs if isinstance(e, ProcessEvent) and e.type is ProcessEventType.EXEC}
    cut_short = {e.h.pid for e in evs if isinstance(e, SyscallSpan) and e.name == "execve" and e.ret < 0} - execd
    assert cut_short, f"the race was not reproduced: {os.statvfs(tmp_path)} (page cache not evicted?)"
    for side in (cold, warm):
        assert side.obs.programs is not None
        assert [(c.role, c.signal) for c in side.obs.programs.children] == [(("sleep", "30"), 15)] * 5
    v = compare(cold.obs, warm.obs)
    assert v.verdict == "equivalent", v.explanation
