"""``sysweave demo`` (what ``make run`` runs): trace a bundled workload, then validate the bundled pairs.

Every examples/pairs/NAME.py that has a NAME.c next to it is a pair: the Python program is the original;
NAME.c compiles to the faithful translation and, with -DBROKEN, to a subtly broken one. Each faithful
translation must come out equivalent and each broken one divergent (examples/pairs/README.md says what
each pair exercises). Then two pairs are validated again with the original started through launchers
(``python3`` from PATH, which may be a version-manager shim, ``env`` and ``sh -c``): the verdicts must not
change.
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
from pathlib import Path


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


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--examples", default=None, help="the examples folder (default: the repository's examples/)")
    p.add_argument("--store", metavar="PATH", help="trace store (default: the embedded store)")
    p.add_argument("--pair", action="append", metavar="NAME", help="validate only this pair (repeatable)")
    p.add_argument("--no-launchers", action="store_true", help="skip the launcher step")


def _examples_dir(arg: str | None) -> Path:
    if arg:
        return Path(arg).resolve()  # the runs start in copies of the workdir: every path must be absolute
    if _DEFAULT is None:
        raise SystemExit("sysweave demo: cannot find examples/ (pass --examples DIR)")
    return _DEFAULT


def build(examples: Path, out: Path, pairs: tuple[str, ...] | None = None) -> None:
    """Compile NAME.c to OUT/NAME and, with -DBROKEN, to OUT/NAME-broken (only when out of date)."""
    out.mkdir(parents=True, exist_ok=True)
    for name in discover_pairs(examples) if pairs is None else pairs:
        src = examples / "pairs" / f"{name}.c"
        for variant, flags in ((name, []), (f"{name}-broken", ["-DBROKEN"])):
            binary = out / variant
            if not binary.exists() or binary.stat().st_mtime < src.stat().st_mtime:
                subprocess.run(["cc", "-O2", "-w", "-pthread", *flags, "-o", str(binary), str(src)], check=True)


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


def run(args: argparse.Namespace) -> int:
    examples = _examples_dir(args.examples)
    pairs = tuple(args.pair) if args.pair else discover_pairs(examples)
    unknown = sorted(set(pairs) - set(discover_pairs(examples)))
    if unknown:
        raise SystemExit(f"sysweave demo: no such pair: {', '.join(unknown)}")
    bins = examples.parent / ".local" / "examples" / "bin"
    build(examples, bins, pairs)
    store = ["--store", args.store] if args.store else []
    sysweave = [sys.executable, "-m", "sysweave.cli.main"]
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    print("== 1. sysweave trace -f -c: the pipeline example (Python driving sort(1)) ==", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        shutil.copytree(examples / "data", tmp, dirs_exist_ok=True)
        rc = subprocess.call([*sysweave, "trace", "-f", "-c", *store, "--label", "demo: pipeline.py", "--",
                              sys.executable, str(examples / "pairs" / "pipeline.py")], cwd=tmp, stdout=subprocess.DEVNULL)
    if rc != 0:
        print(f"sysweave demo: tracing failed (exit {rc})", file=sys.stderr)
        return rc

    def check(label: str, original: str, transpiled: Path, expected: int) -> bool:
        """One validation; right only when the exit status AND the JSON verdict say what is expected (a crash is wrong)."""
        want = "equivalent" if expected == 0 else "divergent"
        res = subprocess.run([*sysweave, "validate", "--original", original, "--transpiled", str(transpiled),
                              "--workdir", str(examples / "data"), "--json", *store], capture_output=True, text=True,
                             env=env)
        try:
            report = json.loads(res.stdout)
            verdict, line = report["verdict"], f"{report['verdict'].upper()}: {report['explanation']}"
        except (ValueError, KeyError, TypeError):
            verdict = ""
            line = f"exit {res.returncode}: " + ((res.stderr.strip().splitlines() or [""])[-1])
        ok = res.returncode == expected and verdict == want
        print(f"{'ok ' if ok else 'BAD'} {label:34} {line}" + ("" if ok else f"   [expected {want}]"), flush=True)
        return ok

    print(f"\n== 2. sysweave validate: {len(pairs)} Python programs vs their C translations (equivalent) and broken "
          "variants (divergent) ==", flush=True)
    failures = 0
    for name in pairs:
        original = f"{sys.executable} {examples / 'pairs' / f'{name}.py'}"
        for variant, expected in ((name, 0), (f"{name}-broken", 1)):
            failures += not check(variant, original, bins / variant, expected)
    chosen = [name for name in LAUNCHER_PAIRS if name in pairs] if not args.no_launchers else []
    if chosen:
        print(f"\n== 3. launchers are transparent: {', '.join(chosen)} started through each, same verdicts ==", flush=True)
    for name in chosen:
        for label, original in launchers(examples / "pairs" / f"{name}.py"):
            for variant, expected in ((name, 0), (f"{name}-broken", 1)):
                failures += not check(f"{variant} via {label}", original, bins / variant, expected)
    print("\nquery the history: sysweave query --name validation-history ; sysweave query --name slowest-syscalls")
    if failures:
        print(f"sysweave demo: {failures} verdict(s) wrong", file=sys.stderr)
    return 1 if failures else 0
