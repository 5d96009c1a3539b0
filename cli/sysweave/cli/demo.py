"""``sysweave demo`` (what ``make run`` runs): trace a bundled workload, then validate the bundled pairs.

Every examples/pairs/NAME.py that has a NAME.c next to it is a pair: the Python program is the original;
NAME.c compiles to the faithful translation and, with -DBROKEN, to a subtly broken one. Each faithful
translation must come out equivalent and each broken one divergent (examples/pairs/README.md says what
each pair exercises). Then two pairs are validated again with the original started through launchers
(``python3`` from PATH, which may be a version-manager shim, ``env`` and ``sh -c``): the verdicts must not
change. Last, the case file of a stdin-driven pair (:data:`CASE_FILES`, examples/pairs/stdin/sum.cases.jsonl)
goes through validate's own case code, case by case: the cases that agree must come out equivalent and the
one whose total overflows the C ``int`` divergent.

One progress line per stage (setup, trace) and per validation (``[validate k/N]``), then a summary with
each stage's time. Exit status: 0 every verdict right, 1 a verdict wrong (or a crash), 2 none wrong but
some undecided (the capture stayed incomplete; docs/equivalence.md, "No verdict from a guess"), 130/143
interrupted. ``--summary FILE`` writes the tally and the times as JSON (``make demo-stress`` reads it).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

from sysweave.validator.equivalence.cases import Case, load_cases

if TYPE_CHECKING:
    from sysweave.cli.demo_check import Tally

__all__ = ["CASE_FILES", "LAUNCHER_PAIRS", "PAIRS", "add_arguments", "build", "build_cases", "case_plan",
           "discover_pairs", "launchers", "plan", "run"]

Validation = tuple[str, str, str, str, Case]  # (label, original, transpiled, expected verdict, the case)


def discover_pairs(examples: Path) -> tuple[str, ...]:
    """The pairs in EXAMPLES/pairs: every NAME.py with a NAME.c beside it, sorted by name."""
    folder = examples / "pairs"
    return tuple(sorted(p.stem for p in folder.glob("*.py") if (folder / f"{p.stem}.c").is_file()))


def _find_examples() -> Path | None:
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "examples" / "pairs").is_dir():
            return parent / "examples"
    return None


_DEFAULT = _find_examples()
PAIRS: tuple[str, ...] = discover_pairs(_DEFAULT) if _DEFAULT else ()
LAUNCHER_PAIRS = ("greet", "pipeline")  # no child / a sort child behind the launcher
# case files the whole demo validates: (folder under pairs/, pair, case file, the cases that must diverge; the
# others must be equivalent). examples/pairs/stdin/README.md says why "large" diverges (a C int overflows).
CASE_FILES = (("stdin", "sum", "sum.cases.jsonl", frozenset({"large"})),)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--examples", default=None, help="the examples folder (default: the repository's examples/)")
    p.add_argument("--store", metavar="PATH", help="trace store (default: the embedded store)")
    p.add_argument("--pair", action="append", metavar="NAME", help="validate only this pair (repeatable)")
    p.add_argument("--no-launchers", action="store_true", help="skip the launcher step")
    p.add_argument("--no-cases", action="store_true",
                   help="skip the case-file step (it also runs only without --pair)")
    p.add_argument("--summary", metavar="FILE", help="also write the tally and each stage's time as JSON")


def _examples_dir(arg: str | None) -> Path:
    if arg:
        return Path(arg).resolve()  # the runs start in copies of the workdir: every path must be absolute
    if _DEFAULT is None:
        raise SystemExit("sysweave demo: cannot find examples/ (pass --examples DIR)")
    return _DEFAULT


def build(examples: Path, out: Path, pairs: tuple[str, ...] | None = None) -> int:
    """Compile NAME.c to OUT/NAME and, with -DBROKEN, to OUT/NAME-broken (only when out of date); how many
    were compiled."""
    out.mkdir(parents=True, exist_ok=True)
    compiled = 0
    for name in discover_pairs(examples) if pairs is None else pairs:
        src = examples / "pairs" / f"{name}.c"
        for variant, flags in ((name, []), (f"{name}-broken", ["-DBROKEN"])):
            binary = out / variant
            if not binary.exists() or binary.stat().st_mtime < src.stat().st_mtime:
                subprocess.run(["cc", "-O2", "-w", "-pthread", *flags, "-o", str(binary), str(src)], check=True)
                compiled += 1
    return compiled


def build_cases(examples: Path, out: Path) -> int:
    """Compile each case-file pair's C translation to OUT/FOLDER-NAME (only when out of date); how many."""
    compiled = 0
    for folder, name, _, _ in CASE_FILES:
        src, binary = examples / "pairs" / folder / f"{name}.c", out / f"{folder}-{name}"
        if not binary.exists() or binary.stat().st_mtime < src.stat().st_mtime:
            out.mkdir(parents=True, exist_ok=True)
            subprocess.run(["cc", "-O2", "-w", "-o", str(binary), str(src)], check=True)
            compiled += 1
    return compiled


def case_plan(examples: Path, bins: Path) -> list[Validation]:
    """Every case of :data:`CASE_FILES`, loaded and checked by validate's own case loader, with the verdict it
    must give."""
    out = []
    for folder, name, cases, diverging in CASE_FILES:
        original = f"{shlex.quote(sys.executable)} {shlex.quote(str(examples / 'pairs' / folder / f'{name}.py'))}"
        for case in load_cases(str(examples / "pairs" / folder / cases)):
            out.append((f"{name} case {case.name}", original, str(bins / f"{folder}-{name}"),
                        "divergent" if case.name in diverging else "equivalent", case))
    return out


def launchers(script: Path) -> list[tuple[str, str]]:
    """The same Python program started directly and through launchers, as (label, command line)."""
    direct = f"{shlex.quote(sys.executable)} {shlex.quote(str(script))}"
    python3 = shutil.which("python3") or "python3"
    return [
        ("interpreter", direct),
        ("python3 on PATH", f"{shlex.quote(python3)} {shlex.quote(str(script))}"),
        ("env", f"env python3 {shlex.quote(str(script))}"),
        ("sh -c", f"sh -c {shlex.quote('python3 ' + shlex.quote(str(script)))}"),
    ]


def plan(examples: Path, bins: Path, pairs: tuple[str, ...], with_launchers: bool) -> list[tuple[str, str, str, str]]:
    """Every validation of the demo as (label, original, transpiled, expected verdict): each pair's faithful
    and broken translation, then the launcher pairs through each launcher but the plain interpreter (the
    first step already ran that)."""
    out = []
    for name in pairs:
        original = f"{shlex.quote(sys.executable)} {shlex.quote(str(examples / 'pairs' / f'{name}.py'))}"
        out += [(name, original, str(bins / name), "equivalent"),
                (f"{name}-broken", original, str(bins / f"{name}-broken"), "divergent")]
    for name in (n for n in LAUNCHER_PAIRS if n in pairs and with_launchers):
        for label, original in launchers(examples / "pairs" / f"{name}.py")[1:]:
            out += [(f"{name} via {label}", original, str(bins / name), "equivalent"),
                    (f"{name}-broken via {label}", original, str(bins / f"{name}-broken"), "divergent")]
    return out


def _trace(examples: Path, store: list[str]) -> int:
    sysweave = [sys.executable, "-m", "sysweave.cli.main"]
    with tempfile.TemporaryDirectory() as tmp:
        shutil.copytree(examples / "data", tmp, dirs_exist_ok=True)
        return subprocess.call([*sysweave, "trace", "-f", "-c", *store, "--label", "demo: pipeline.py", "--",
                                sys.executable, str(examples / "pairs" / "pipeline.py")], cwd=tmp,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _validate_all(examples: Path, store: str | None, todo: list[Validation]) -> tuple[int, Tally]:
    from sysweave.cli.demo_check import Checker
    from sysweave.cli.validate_cases import Interrupted

    checker = Checker(examples / "data", store)
    try:
        with checker.signals.installed():
            for k, (label, original, transpiled, expected, case) in enumerate(todo, start=1):
                ok, line = checker.check(label, original, transpiled, expected, case)
                print(f"[validate {k:>{len(str(len(todo)))}}/{len(todo)}] {'ok ' if ok else 'BAD'} {label:32} {line}"
                      + ("" if ok else f"   [expected {expected}]"), flush=True)
    except Interrupted as exc:
        print(f"sysweave demo: interrupted by signal {exc.signal_number}", file=sys.stderr)
        return 128 + exc.signal_number, checker.tally
    finally:
        checker.close()
    return 0, checker.tally


def run(args: argparse.Namespace) -> int:
    start = time.monotonic()
    examples = _examples_dir(args.examples)
    pairs = tuple(args.pair) if args.pair else discover_pairs(examples)
    unknown = sorted(set(pairs) - set(discover_pairs(examples)))
    if unknown:
        raise SystemExit(f"sysweave demo: no such pair: {', '.join(unknown)}")
    os.environ["PYTHONDONTWRITEBYTECODE"] = "1"  # the originals must not write __pycache__ beside themselves
    bins = examples.parent / ".local" / "examples" / "bin"
    todo: list[Validation] = [(*v, Case()) for v in plan(examples, bins, pairs, not args.no_launchers)]
    compiled = build(examples, bins, pairs)
    cases = case_plan(examples, bins) if not args.pair and not args.no_cases else []
    if cases:
        todo += cases
        compiled += build_cases(examples, bins)
    t_setup = time.monotonic() - start
    print(f"[setup]  {len(pairs)} pairs, {len(todo)} validations{f' ({len(cases)} cases)' if cases else ''}; "
          f"compiled {compiled} translation(s) ({t_setup:.1f} s)", flush=True)
    rc = _trace(examples, ["--store", args.store] if args.store else [])
    t_trace = time.monotonic() - start - t_setup
    print(f"[trace]  sysweave trace -f -c: examples/pairs/pipeline.py driving sort(1), stored "
          f"({'ok' if rc == 0 else f'exit {rc}'}, {t_trace:.1f} s)", flush=True)
    if rc != 0:
        print(f"sysweave demo: tracing failed (exit {rc}); 'sysweave doctor' says what is missing", file=sys.stderr)
        return rc
    stopped, tally = _validate_all(examples, args.store, todo)
    t_all = time.monotonic() - start
    times = {"setup_s": round(t_setup, 2), "trace_s": round(t_trace, 2),
             "validation_s": round(t_all - t_setup - t_trace, 2), "total_s": round(t_all, 2)}
    print(f"sysweave demo: {tally.right} of {tally.total} verdicts right, {len(tally.wrong)} wrong, "
          f"{len(tally.undecided)} undecided in {t_all:.0f} s (setup {t_setup:.1f} s, trace {t_trace:.1f} s, "
          f"validation {times['validation_s']:.0f} s)"
          + (f"; {len(tally.not_stored)} report(s) not stored (the first error is above)" if tally.not_stored else ""))
    print("query the history: sysweave query --name validation-history ; sysweave query --name slowest-syscalls")
    if args.summary:
        Path(args.summary).write_text(json.dumps({**tally.as_dict(), **times, "interrupted": bool(stopped)}, indent=2))
    if stopped:
        return stopped
    for line in tally.wrong + tally.undecided:
        print(f"  {line}", file=sys.stderr)
    return 1 if tally.wrong else 2 if tally.undecided else 0
