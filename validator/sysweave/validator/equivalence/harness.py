"""Run the original and the transpiled command under capture, each run in a fresh copy of the workdir,
and turn the runs into Obs; mask what differs between runs of the same program (``--runs K``).

Capture is passed in (:class:`CaptureRunner`): the validator never imports the agents; the CLI hands it
the eBPF capture, tests may hand it any runner that produces events.

A run whose capture lost something a verdict needs (:func:`.evidence.capture_gaps`) is run again, at most
:data:`.evidence.MAX_RERUNS` times (:meth:`Harness.run_complete`); if every attempt had a gap the side is
undecided — never a verdict from a guess.

Errors::

    HarnessError            -- a run could not be decided (tracer unavailable, timeout, command not found)
      └── Undecided         -- the capture stayed incomplete after the reruns (the reason names the gaps)
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import statistics
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, Any, Protocol

from sysweave.schemas.errors import SysweaveError, ValidatorError
from sysweave.schemas.events import Event, SyscallAggregate
from sysweave.validator.equivalence.cases import Case
from sysweave.validator.equivalence.evidence import MAX_RERUNS, Gap, capture_gaps, describe
from sysweave.validator.equivalence.filestate import read_range, read_state, snapshot_tree
from sysweave.validator.equivalence.observe import Obs, extract

__all__ = ["MASK", "CaptureRunner", "CapturedRun", "Harness", "HarnessError", "RunRecord", "SideSummary", "Undecided",
           "case_argv", "command_argv", "mask_nondeterminism"]

_SHELL_CHARS = re.compile(r"[|&;<>()$`\\\"'*?\[\]#~=%{}\n]")
MASK = b"\x00?\x00"
_TOKEN = re.compile(rb"[A-Za-z0-9_]+|[^A-Za-z0-9_]")


class HarnessError(ValidatorError):
    pass


class Undecided(HarnessError):
    """Every attempt at a run lost evidence a verdict needs; ``gaps``: the last attempt's."""

    def __init__(self, message: str, gaps: list[Gap]) -> None:
        super().__init__(message)
        self.gaps = gaps


@dataclass
class CapturedRun:
    """What a capture of one run returns (the fields the harness needs of the agents' CaptureResult)."""

    exit_code: int
    root_pid: int
    events: list[Event]  # every event, aggregates and host/lost reports included
    aggregates: list[SyscallAggregate] = field(default_factory=list)
    lost: dict[str, int] = field(default_factory=dict)
    backend: str = ""
    wall_s: float = 0.0
    cpu_s: float = 0.0
    max_rss_kb: int = 0
    timed_out: bool = False  # killed (its whole tree) at its timeout: the events are those until then
    interrupted: int | None = None  # the signal that cut it short
    accounting: str = ""  # where cpu_s and max_rss_kb come from (cgroup or wait4)


class CaptureRunner(Protocol):
    def run(self, argv: list[str], cwd: str, timeout_s: float, stdout: IO[bytes], stderr: IO[bytes],
            stdin: IO[bytes] | None = None, env: dict[str, str] | None = None) -> CapturedRun:
        """Run ``argv`` traced (descendants too) with observable I/O; raise SysweaveError if it cannot.
        ``stdin``: None is /dev/null; ``env``: the whole environment (None: inherit)."""
        ...

    def close(self) -> None: ...


@dataclass
class RunRecord:
    obs: Obs
    result: CapturedRun
    events: list[Event]
    workdir: str


@dataclass
class SideSummary:
    runs: list[RunRecord]
    obs: Obs  # the representative Obs, with nondeterminism masked (the last run's if it did not finish)
    masked: list[str] = field(default_factory=list)
    limit_s: float = 0.0  # the timeout of its last run

    @property
    def timed_out(self) -> bool:
        return bool(self.runs) and self.runs[-1].result.timed_out

    @property
    def interrupted(self) -> int | None:
        return self.runs[-1].result.interrupted if self.runs else None
    reruns: list[str] = field(default_factory=list)  # why a run was repeated (its capture had a gap)

    def performance(self) -> dict[str, Any]:
        res = [r.result for r in self.runs]
        return {
            "wall_s": statistics.median(r.wall_s for r in res),
            "cpu_s": statistics.median(r.cpu_s for r in res),
            "max_rss_kb": max(r.max_rss_kb for r in res),
            "syscalls": statistics.median(sum(a.calls for a in r.aggregates) for r in res),
            "io_bytes": statistics.median(r.obs.io_bytes for r in self.runs),
        }


def command_argv(cmd: str, workdir: str | None = None, caller_cwd: str | None = None) -> list[str]:
    """Plain commands run directly (so the program is the root process); shell syntax goes through sh -c.

    Each run starts in a fresh copy of ``workdir``, but a user names the program from where they stand:
    a word that is a path existing relative to ``caller_cwd`` and NOT inside the workdir (the program, its
    script) becomes absolute; words naming the workdir's own files stay as written. Example, run from
    /src with --workdir data/: ``python3 wc.py input.txt`` -> ``python3 /src/wc.py input.txt``
    (data/input.txt exists; data/wc.py does not). Inside shell syntax, words are left to the shell."""
    if _SHELL_CHARS.search(cmd):
        return ["/bin/sh", "-c", cmd]
    argv = shlex.split(cmd)
    if not argv:
        raise HarnessError("empty command")
    here = caller_cwd or os.getcwd()
    out = []
    for i, word in enumerate(argv):
        bare_command = i == 0 and "/" not in word  # a name looked up on PATH
        if (not bare_command and not word.startswith("-") and not os.path.isabs(word)
                and not (workdir and os.path.lexists(os.path.join(workdir, word)))
                and os.path.exists(os.path.join(here, word))):
            word = os.path.abspath(os.path.join(here, word))
        out.append(word)
    return out


def case_argv(cmd: str, case: Case, workdir: str | None = None) -> list[str]:
    """The command line of one case: the command's argv with the case's arguments appended (a shell
    command gets them as its positional parameters: ``sh -c 'CMD "$@"' sh ARG...``)."""
    argv = command_argv(cmd, workdir)
    if not case.args:
        return argv
    if argv[:2] == ["/bin/sh", "-c"] and len(argv) == 3:
        return ["/bin/sh", "-c", argv[2] + ' "$@"', "sh", *case.args]
    return argv + list(case.args)


class Harness:
    def __init__(self, workdir: str | None, timeout_s: float, runner: CaptureRunner) -> None:
        self.workdir = workdir
        self.timeout_s = timeout_s
        self.runner = runner

    def close(self) -> None:
        self.runner.close()

    def run_once(self, cmd: str, case: Case | None = None, timeout_s: float | None = None) -> RunRecord:
        """One traced run in a fresh copy of the workdir; a run killed at its timeout or by a signal is
        returned too (``result.timed_out``/``interrupted``), with its effects until then."""
        case = case or Case()
        workdir = case.workdir or self.workdir
        argv = case_argv(cmd, case, workdir)
        if not shutil.which(argv[0]) and not os.path.exists(argv[0]):
            raise HarnessError(f"command not found: {argv[0]} (a relative path is looked up from the current "
                               f"directory, then inside the --workdir copy each run starts in)")
        run_dir = tempfile.mkdtemp(prefix="sysweave-run-")
        if workdir:
            shutil.copytree(workdir, run_dir, dirs_exist_ok=True, symlinks=True)
        env = {**os.environ, **case.env} if case.env else None
        out_path, err_path = os.path.join(run_dir, ".sysweave-stdout"), os.path.join(run_dir, ".sysweave-stderr")
        try:
            with open(out_path, "wb") as out, open(err_path, "wb") as err, _stdin(case) as stdin:
                result = self.runner.run(argv, run_dir, timeout_s or self.timeout_s, out, err, stdin, env)
            with open(out_path, "rb") as f:
                stdout = f.read()
            with open(err_path, "rb") as f:
                stderr = f.read()
            os.unlink(out_path)
            os.unlink(err_path)
            real = os.path.realpath(run_dir).encode()
            stdout, stderr = (x.replace(real, b"<workdir>") for x in (stdout, stderr))
            # the workdir's final tree, and any other path the run wrote, read before the directory goes
            tree = snapshot_tree(run_dir, skip=(".sysweave-stdout", ".sysweave-stderr"))
            obs = extract(result.events, run_dir, result.root_pid, stdout, stderr, result.exit_code,
                          final_state=read_state, tree=tree, read_range=read_range, stdin_range=_stdin_range(case))
            obs.lost_events = max(obs.lost_events, sum(result.lost.values()))
        except SysweaveError as exc:
            if isinstance(exc, HarnessError):
                raise
            raise HarnessError(f"{cmd!r}: {exc}") from exc
        except OSError as exc:  # the program could not be started (not executable, a missing interpreter)
            raise HarnessError(f"{cmd!r}: cannot start {argv[0]}: {exc.strerror or exc}") from exc
        finally:
            shutil.rmtree(run_dir, ignore_errors=True)
        return RunRecord(obs, result, result.events, run_dir)

    def run_complete(self, cmd: str, case: Case | None = None, timeout_s: float | None = None,
                     reruns: list[str] | None = None) -> RunRecord:
        """One run of ``cmd`` whose capture is complete: while a run's capture has a gap (events lost, an
        exec or an exit not recorded) run it again, at most MAX_RERUNS times; then :class:`Undecided`.
        A run that did not finish (timeout, interrupted) is returned as it is: the hang is the evidence.
        ``reruns`` collects why each repeated run was repeated (for the report)."""
        for attempt in range(1 + MAX_RERUNS):
            rec = self.run_once(cmd, case, timeout_s)
            if rec.result.timed_out or rec.result.interrupted:
                return rec
            gaps = capture_gaps(rec.events, {**rec.result.lost}, running=_running)
            if not gaps:
                return rec
            why = describe(gaps)
            if reruns is not None:
                reruns.append(why)
            if attempt < MAX_RERUNS:
                print(f"sysweave: the capture of {cmd!r} was incomplete ({why}); running it again "
                      f"({attempt + 2} of {1 + MAX_RERUNS})", file=sys.stderr, flush=True)
        raise Undecided(f"{cmd!r}: the capture was incomplete in all {1 + MAX_RERUNS} runs, so no verdict can "
                        f"stand on it: {why}", gaps)

    def run_side(self, cmd: str, runs: int, case: Case | None = None, timeout_s: float | None = None) -> SideSummary:
        """``runs`` runs of ``cmd``; the first gets ``timeout_s``, later ones at most 10x the slowest finished
        run (at least 5 s). A run that did not finish ends the side: its effects until then represent it."""
        limit = timeout_s or self.timeout_s
        records: list[RunRecord] = []
        reruns: list[str] = []
        used = limit
        for _ in range(runs):
            used = limit
            records.append(self.run_complete(cmd, case, used, reruns))
            last = records[-1].result
            if last.timed_out or last.interrupted:
                return SideSummary(records, records[-1].obs, [], used, reruns)
            limit = min(limit, max(10 * max(r.result.wall_s for r in records), 5.0))
        obs, masked = mask_nondeterminism([r.obs for r in records])
        return SideSummary(records, obs, masked, used, reruns)


def _running(pid: int) -> bool:
    """Still alive (or a zombie not yet reaped) after the run: a process the run left behind has no exit yet."""
    return os.path.exists(f"/proc/{pid}")


def _stdin(case: Case) -> IO[bytes]:
    """The case's stdin as an open file: its stdin_file, its bytes in an anonymous temporary file, or /dev/null."""
    if case.stdin_file is not None:
        try:
            return open(case.stdin_file, "rb")
        except OSError as exc:
            raise HarnessError(f"case {case.name!r}: cannot open stdin file {case.stdin_file}: "
                               f"{exc.strerror or exc}") from exc
    if case.stdin is None:
        return open(os.devnull, "rb")
    f = tempfile.TemporaryFile()  # noqa: SIM115 -- returned open; no name: nothing to clean up, nothing inside the run's workdir
    f.write(case.stdin)
    f.seek(0)
    return f


def _stdin_range(case: Case) -> Callable[[int, int], bytes | None] | None:
    """Bytes [start, end) of the case's stdin (what a splice/sendfile from fd 0 moved); None: /dev/null."""
    if case.stdin_file is not None:
        path = case.stdin_file
        return lambda a, b: read_range(path, a, b)
    data = case.stdin
    if data is None:
        return None
    return lambda a, b: data[a:b] if 0 <= a <= b <= len(data) else None


def _mask_bytes(values: list[bytes], what: str, masked: list[str], counter: list[int]) -> bytes:
    first = values[0]
    if all(v == first for v in values):
        return first
    token_lists = [_TOKEN.findall(v) for v in values]
    if len({len(t) for t in token_lists}) != 1:
        raise HarnessError(f"{what} differs in structure between runs of the same program; cannot mask it "
                           f"(make the program deterministic, or compare with --runs 1)")
    out = []
    for i, tok in enumerate(token_lists[0]):
        if any(t[i] != tok for t in token_lists[1:]):
            masked.append(f"{what}: token {i} ({tok.decode('utf-8', 'replace')!r} ...)")
            counter[0] += len(tok)
            out.append(MASK)
        else:
            out.append(tok)
    return b"".join(out)


def mask_nondeterminism(obs_runs: list[Obs]) -> tuple[Obs, list[str]]:
    """Mask what differs between runs of the same program: output tokens, file contents, temp-file names.

    The representative Obs is the first run's, with ``masked_bytes`` set (it lowers the confidence)."""
    base = obs_runs[0]
    masked: list[str] = []
    if len(obs_runs) == 1:
        return base, masked
    counter = [0]
    for name, s in base.streams.items():
        s.data = _mask_bytes([o.streams[name].data if name in o.streams else b"" for o in obs_runs], name, masked,
                             counter)
    paths = [sorted(o.files) for o in obs_runs]
    if len({len(p) for p in paths}) == 1 and any(p != paths[0] for p in paths):
        renamed = {}
        for i, path in enumerate(paths[0]):
            variants = [p[i] for p in paths]
            if any(v != path for v in variants):
                renamed[path] = _mask_bytes([v.encode() for v in variants], f"file name {path}", masked,
                                            counter).decode("utf-8", "replace")
        base.files = {renamed.get(p, p): f for p, f in base.files.items()}
        for p, f in base.files.items():
            f.path = p
        for o, ps in zip(obs_runs[1:], paths[1:]):
            o.files = {renamed.get(a, a): o.files[b] for a, b in zip(paths[0], ps)}
    for path, f in base.files.items():
        others = [o.files.get(path) for o in obs_runs[1:]]
        if any(x is None or x.digest != f.digest for x in others) and f.content is not None and \
                all(x is not None and x.content is not None for x in others):
            f.content = _mask_bytes([f.content] + [x.content for x in others if x is not None and x.content is not None],
                                    f"content of {path}", masked, counter)
            f.digest = None  # compared by the masked content
    base.masked_bytes = counter[0]
    return base, masked
