"""``sysweave validate ... --fuzz N``: differential fuzzing from the seed case (glue over sysweave.validator.fuzz).

    sysweave validate --original "python3 sum.py" --transpiled ./sum --stdin small.txt --fuzz 2000 [--seed S]
        [--corpus DIR] [--workdir DIR] [--json]

Runs both sides untraced on mutants of the seed (stdin, workdir files) and compares stdout, stderr, exit status
and the workdir's final tree; a confirmed divergence is shrunk, then both sides run once under tracing on the
shrunk input to explain it (the full comparison of docs/equivalence.md). Exit status: 0 no divergence in N
executions, 1 a diverging input was found (printed, shrunk, with the seed that reproduces it), 2 could not decide.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shlex
import shutil
import sys
import tempfile
from collections.abc import Callable
from typing import Any

from sysweave.agents.scratch import PrivateTmp, unavailable
from sysweave.validator.equivalence.cases import Case, CaseError
from sysweave.validator.equivalence.harness import HarnessError, command_argv
from sysweave.validator.fuzz.dictionary import program_words
from sysweave.validator.fuzz.execute import NativeExecutor
from sysweave.validator.fuzz.loop import Finding, FuzzConfig, FuzzReport, fuzz
from sysweave.validator.fuzz.model import FuzzInput

__all__ = ["MAX_SEED_FILE", "add_arguments", "run", "seed_input", "seeds_from", "traced_on"]

MAX_SEED_FILE = 64 * 1024  # bytes: larger workdir files are copied as they are, never mutated
MAX_SEED_FILES = 16


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--fuzz", type=int, metavar="N", default=0, help="differential fuzzing: N executions of both "
                   "programs, untraced, on mutants of the seed case; a diverging input is shrunk and explained")
    p.add_argument("--seed", type=int, metavar="S", help="the fuzzer's random seed (printed by every run; "
                   "the same seed and programs repeat the same run)")
    p.add_argument("--corpus", metavar="DIR", help="keep interesting and diverging inputs in DIR between runs "
                   "(created if missing; its inputs are tried first)")
    p.add_argument("--shrink-limit", type=int, default=2000, metavar="K",
                   help="at most K executions to shrink a diverging input (default 2000)")
    p.add_argument("--fuzz-private-tmp", action="store_true", help="with --fuzz: every execution gives each side its "
                   "own /tmp (root), not only the confirming and shrinking ones (~35 %% slower, docs/benchmarks.md)")
    p.add_argument("--no-explain", action="store_true", help="with --fuzz: do not rerun the diverging input under "
                   "tracing (the untraced difference is the verdict; no eBPF needed)")


def seed_input(stdin: bytes | None, workdir: str | None, args: tuple[str, ...] = ()) -> FuzzInput:
    """The seed case as a fuzz input: its stdin and arguments, and the small regular files of its workdir
    (up to MAX_SEED_FILES of at most MAX_SEED_FILE bytes, the fuzzer's file targets)."""
    files: list[tuple[str, bytes]] = []
    if workdir:
        for dirpath, dirnames, names in os.walk(workdir):
            dirnames.sort()
            for name in sorted(names):
                full = os.path.join(dirpath, name)
                if os.path.isfile(full) and not os.path.islink(full) and os.path.getsize(full) <= MAX_SEED_FILE \
                        and len(files) < MAX_SEED_FILES:
                    with open(full, "rb") as f:
                        files.append((os.path.relpath(full, workdir), f.read()))
    return FuzzInput(stdin, args, tuple(sorted(files)), "seed")


def _program_files(cmd: str, workdir: str | None) -> list[str]:
    argv = command_argv(cmd, workdir)
    words = shlex.split(argv[2]) if argv[:2] == ["/bin/sh", "-c"] else argv
    return [w for w in words[1:] if os.path.isfile(w)] + [shutil.which(words[0]) or words[0]]


# validate's case runner: (args, cases, entries out, warnings out); passed in (cli.validate imports this module)
Validate = Callable[[argparse.Namespace, list[Case], list[dict[str, Any]], list[str]], None]


def traced_on(validate: Validate, args: argparse.Namespace, inp: FuzzInput, env: dict[str, str],
              workdir: str | None) -> dict[str, Any]:
    """Both sides once under tracing on ``inp`` (the full comparison of docs/equivalence.md): its report entry.
    The case's workdir is a copy of ``workdir`` with the input's files written over it."""
    with tempfile.TemporaryDirectory(prefix="sysweave-explain-") as tmp:
        copy = os.path.join(tmp, "workdir")
        if workdir:
            shutil.copytree(workdir, copy, symlinks=True)
        else:
            os.mkdir(copy)
        for path, content in inp.files:
            os.makedirs(os.path.dirname(os.path.join(copy, path)), exist_ok=True)
            with open(os.path.join(copy, path), "wb") as f:
                f.write(content)
        case = Case("fuzz: shrunk input", inp.args, inp.stdin, None, env, copy)
        entries: list[dict[str, Any]] = []
        warnings: list[str] = []
        validate(argparse.Namespace(**{**vars(args), "runs": 1, "no_store": True}), [case], entries, warnings)
        return entries[0]


def _finding_dict(f: Finding) -> dict[str, Any]:
    return {"found_at": f.found_at, "channel": f.divergence.channel, "divergence": f.divergence.explanation,
            "input": json.loads(f.shrunk.to_json()), "input_text": f.shrunk.describe(),
            "found_size": f.found.size(), "shrunk_size": f.shrunk.size(),
            "shrink_executions": f.shrink_executions, "shrink_s": round(f.shrink_s, 3)}


def _report_dict(rep: FuzzReport, explained: dict[str, Any] | None, why_not: str) -> dict[str, Any]:
    return {"verdict": "divergent" if rep.finding else "no divergence found", "seed": rep.seed,
            "executions": rep.executions, "runs": rep.total_runs, "execs_per_s": round(rep.execs_per_s, 2),
            "kept": rep.kept, "flaky": rep.flaky, "ignored": rep.ignored, "notes": rep.notes,
            "finding": _finding_dict(rep.finding) if rep.finding else None,
            "traced": explained, "traced_error": why_not or None}


def _print(rep: FuzzReport, out: dict[str, Any]) -> None:
    print(f"fuzz: seed {rep.seed} (repeat this run with --seed {rep.seed}); {rep.executions} executions "
          f"({rep.execs_per_s:.1f}/s), {rep.kept} inputs kept, {rep.flaky} flaky")
    for what in rep.ignored:
        print(f"  note: {what} differs between runs of the same program on the seed; not compared while fuzzing")
    for note in rep.notes:
        print(f"  note: {note}")
    f = rep.finding
    if f is None:
        print(f"NO DIVERGENCE FOUND in {rep.executions} executions")
        return
    where = "the seed itself diverges" if f.found_at == 0 else f"found after {f.found_at} executions"
    print(f"DIVERGENT ({where}): {f.divergence.explanation}")
    print(f"  input, shrunk from {f.found.size()} to {f.shrunk.size()} bytes in {f.shrink_executions} executions "
          f"({f.shrink_s:.1f} s): {f.shrunk.describe()}")
    traced = out["traced"]
    if traced:
        print(f"  traced on that input: {traced['verdict'].upper()}: {traced['reason']}")
    elif out["traced_error"]:
        print(f"  not explained under tracing: {out['traced_error']}")


def _isolation() -> tuple[Callable[[str], PrivateTmp] | None, str]:
    """Each side of each execution its own /tmp (agents.scratch), or None and why it cannot be had here."""
    why = unavailable()
    if why:
        return None, why
    return (lambda run_dir: PrivateTmp(shared=[run_dir], cwd=run_dir)), ""


def seeds_from(cases: list[Case], workdir: str | None) -> list[FuzzInput]:
    """One seed per case: its stdin, arguments and the small files of its workdir (or the common one)."""
    return [seed_input(c.stdin_bytes(), c.workdir or workdir, c.args) for c in cases]


def run(args: argparse.Namespace, cases: list[Case], validate: Validate) -> int:
    """Fuzz from ``cases`` (validate's check_args made them); ``validate`` explains a finding under tracing.
    The environment and workdir are the first case's."""
    if args.fuzz < 0 or args.shrink_limit < 0:
        print("sysweave: validate: --fuzz and --shrink-limit must be >= 0", file=sys.stderr)
        return 2
    if args.corpus:
        os.makedirs(args.corpus, exist_ok=True)
    seed = args.seed if args.seed is not None else secrets.randbelow(2**32)
    workdir = cases[0].workdir or args.workdir
    env = {**os.environ, **cases[0].env}
    words = program_words(_program_files(args.original, workdir) + _program_files(args.transpiled, workdir))
    isolate, why = _isolation()
    try:
        # both sides run at once: what decides (confirmation, shrinking) runs each in its own /tmp, so a program
        # writing a fixed /tmp path cannot race the other side into a false divergence; exploring runs share it
        checker = NativeExecutor(args.original, args.transpiled, workdir, args.timeout, env, isolate)
        runner = checker if args.fuzz_private_tmp else \
            NativeExecutor(args.original, args.transpiled, workdir, args.timeout, env)
        rep = fuzz(runner, seeds_from(cases, args.workdir),
                   FuzzConfig(args.fuzz, seed, args.shrink_limit, args.corpus, tuple(words)), checker)
    except (HarnessError, CaseError) as exc:
        print(f"sysweave: validate: could not decide: {exc}", file=sys.stderr)
        return 2
    explained, why_not = None, ""
    if rep.finding is not None and args.no_explain:
        why_not = "--no-explain"
    elif rep.finding is not None:
        try:
            explained = traced_on(validate, args, rep.finding.shrunk, cases[0].env, workdir)
        except (HarnessError, CaseError) as exc:
            why_not = str(exc)
    if why:  # said, not silent: the two sides share /tmp here
        rep.notes.append(f"both sides share the host's /tmp, also when confirming (no private /tmp: {why})")
    out = _report_dict(rep, explained, why_not)
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        _print(rep, out)
    return 1 if rep.finding else 0
