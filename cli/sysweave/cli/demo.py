"""``sysweave demo`` (what ``make run`` runs): trace a bundled workload, then validate the bundled pairs.

examples/pairs/NAME.py is the original; NAME.c compiles to the faithful translation and, with -DBROKEN,
to a subtly broken one. Each pair must come out equivalent and each broken one divergent.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

PAIRS = ("wordcount", "greet", "files", "pipeline", "checksum")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--examples", default=None, help="the examples folder (default: the repository's examples/)")
    p.add_argument("--store", metavar="PATH", help="trace store (default: the embedded store)")


def _examples_dir(arg: str | None) -> Path:
    if arg:
        return Path(arg)
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "examples" / "pairs").is_dir():
            return parent / "examples"
    raise SystemExit("sysweave demo: cannot find examples/ (pass --examples DIR)")


def build(examples: Path, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for name in PAIRS:
        src = examples / "pairs" / f"{name}.c"
        for variant, flags in ((name, []), (f"{name}-broken", ["-DBROKEN"])):
            binary = out / variant
            if not binary.exists() or binary.stat().st_mtime < src.stat().st_mtime:
                subprocess.run(["cc", "-O2", "-w", *flags, "-o", str(binary), str(src)], check=True)


def run(args: argparse.Namespace) -> int:
    examples = _examples_dir(args.examples)
    bins = examples.parent / ".local" / "examples" / "bin"
    build(examples, bins)
    store = ["--store", args.store] if args.store else []
    sysweave = [sys.executable, "-m", "sysweave.cli.main"]
    print("== 1. sysweave trace -f -c: the pipeline example (Python driving sort(1)) ==", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        shutil.copytree(examples / "data", tmp, dirs_exist_ok=True)
        rc = subprocess.call([*sysweave, "trace", "-f", "-c", *store, "--label", "demo: pipeline.py", "--",
                              sys.executable, str(examples / "pairs" / "pipeline.py")], cwd=tmp, stdout=subprocess.DEVNULL)
    if rc != 0:
        print(f"sysweave demo: tracing failed (exit {rc})", file=sys.stderr)
        return rc
    print("\n== 2. sysweave validate: five Python programs vs their C translations and broken variants ==", flush=True)
    failures = 0
    for name in PAIRS:
        original = f"{sys.executable} {examples / 'pairs' / f'{name}.py'}"
        for variant, expected in ((name, 0), (f"{name}-broken", 1)):
            res = subprocess.run([*sysweave, "validate", "--original", original, "--transpiled", str(bins / variant),
                                  "--workdir", str(examples / "data"), *store], capture_output=True, text=True,
                                 env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
            ok = res.returncode == expected
            failures += not ok
            first = (res.stdout.strip().splitlines() or [res.stderr.strip()])[0]
            print(f"{'ok ' if ok else 'BAD'} {variant:18} {first}", flush=True)
    print("\nquery the history: sysweave query --name validation-history ; sysweave query --name slowest-syscalls")
    return 1 if failures else 0
