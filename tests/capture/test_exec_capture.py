"""Exec filename and argv for every way a process starts, against strace -f on the same program.

tests/fixtures/spawn.c starts /bin/echo by fork, vfork, clone(CLONE_VM|CLONE_VFORK), clone3, posix_spawn,
fork from a thread, exec from a (non-leader) thread, and with more arguments than sys_enter reads; each
argv is made of string literals in pages the child has not touched, which BPF cannot read at sys_enter.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from .helpers import FIXTURES, sysweave

pytestmark = [pytest.mark.bpf, pytest.mark.usefixtures("bpf_ready")]

MODES = ["fork", "vfork", "clone", "clone3", "posix_spawn", "thread_fork", "thread_exec", "execvp", "many_args"]
_EXEC = re.compile(r'^(\d+)\s+execve(?:at)?\((?:\w+, )?"((?:[^"\\]|\\.)*)", \[(.*?)\], ')
_STR = re.compile(r'"((?:[^"\\]|\\.)*)"')
_RESUMED = re.compile(r"^(\d+)\s+<\.\.\. execve(?:at)? resumed>.*= (-?\d+)")


def _unescape(s: str) -> str:
    return s.encode("latin-1").decode("unicode_escape")


@pytest.fixture(scope="module")
def spawn_bin(tmp_path_factory: pytest.TempPathFactory) -> str:
    out = tmp_path_factory.mktemp("bin") / "spawn"
    subprocess.run(["cc", "-O1", "-pthread", "-o", str(out), str(FIXTURES / "spawn.c")], check=True)
    return str(out)


def strace_execs(argv: list[str], tmp_path: Path, env: dict[str, str] | None = None,
                 failed: list[str] | None = None) -> list[tuple[str, list[str]]]:
    """(filename, argv) of every execve/execveat that succeeded, as strace -f shows them; the filenames of
    those that failed are appended to ``failed``."""
    log = tmp_path / "strace.log"
    subprocess.run(["strace", "-f", "-qq", "-s", "65536", "-e", "trace=execve,execveat", "-e", "signal=none",
                    "-o", str(log), "--", *argv], check=True, capture_output=True, env=env)
    done: list[tuple[str, list[str]]] = []
    pending: dict[int, tuple[str, tuple[str, list[str]]]] = {}  # pid -> (line, call) awaiting its result
    for line in log.read_text().splitlines():
        if m := _EXEC.match(line):
            call = (_unescape(m.group(2)), [_unescape(a) for a in _STR.findall(m.group(3))])
            if line.rstrip().endswith("= 0"):
                done.append(call)
            elif "= -1" in line:
                if failed is not None:
                    failed.append(call[0])
            else:
                pending[int(m.group(1))] = (line, call)
        elif (r := _RESUMED.match(line)) and r.group(2) == "0":
            pid = int(r.group(1))
            # a thread's exec resumes under the leader's pid ("<pid changed to LEADER ...>")
            key = pid if pid in pending else next(p for p, (ln, _) in pending.items() if f"pid changed to {pid}" in ln)
            done.append(pending.pop(key)[1])
    return sorted(done)


def sysweave_execs(argv: list[str], env: dict[str, str] | None = None,
                   failed: list[str] | None = None) -> list[tuple[str, list[str]]]:
    res = sysweave("trace", "-f", "--format", "jsonl", "--no-store", "--observable", "-e", "trace=execve,execveat",
                   "--", *argv, env=env)
    assert res.returncode == 0, res.stderr[-3000:]
    spans = [json.loads(line) for line in res.stderr.splitlines() if line.startswith("{")]
    if failed is not None:
        failed.extend(s["args"]["path"] for s in spans if s["ret"] < 0)
    return sorted((s["args"]["path"], s["args"]["argv"]) for s in spans if s["ret"] == 0)


@pytest.mark.parametrize("mode", MODES)
def test_exec_argv_equals_strace(spawn_bin: str, mode: str, tmp_path: Path) -> None:
    expected = strace_execs([spawn_bin, mode], tmp_path)
    assert len(expected) == 2 and any(path.endswith("/echo") for path, _ in expected)  # the fixture's, its child's
    assert sysweave_execs([spawn_bin, mode]) == expected


def test_a_path_search_shows_each_failed_filename(spawn_bin: str, tmp_path: Path) -> None:
    """execvp tries each PATH entry: the failed execs' filenames equal strace's (the argv of a failed exec
    from pages the child never touched stays unreadable: no new image to take it from)."""
    env = {**os.environ, "PATH": "/nonexistent-sysweave-a:/nonexistent-sysweave-b:/usr/bin:/bin"}
    want_failed: list[str] = []
    expected = strace_execs([spawn_bin, "execvp"], tmp_path, env, want_failed)
    assert want_failed[:2] == ["/nonexistent-sysweave-a/echo", "/nonexistent-sysweave-b/echo"]
    got_failed: list[str] = []
    assert sysweave_execs([spawn_bin, "execvp"], env, got_failed) == expected
    assert got_failed == want_failed


def test_script_exec_keeps_the_argv_it_was_called_with(tmp_path: Path) -> None:
    """A #! script's new image starts argv with the interpreter; strace (and we) show what the caller passed."""
    script = tmp_path / "hello.sh"
    script.write_text("#!/bin/sh\necho \"$@\"\n")
    script.chmod(0o755)
    argv = ["sh", "-c", f"{script} one 'two words'; exit 0"]
    expected = strace_execs(argv, tmp_path)
    assert [str(script), "one", "two words"] in [a for _, a in expected]
    assert sysweave_execs(argv) == [(p, a) for p, a in expected]
