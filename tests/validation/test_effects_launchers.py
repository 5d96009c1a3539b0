"""Real eBPF runs: launchers are transparent and capture records file effects (docs/equivalence.md).

The same Python program started as `python3 prog.py` (on these machines a pyenv shim: a bash script that
forks dozens of helpers before it execs the interpreter), `env python3 prog.py`, `sh -c 'python3 prog.py'`
and through the interpreter's real path has the same effects as itself and as its faithful C translation;
the broken translation stays divergent whichever launcher started the original."""

from __future__ import annotations

import os
import shlex
import shutil
import sys
from pathlib import Path

import pytest

from sysweave.schemas.events import FileState
from sysweave.validator.equivalence.compare import compare
from sysweave.validator.equivalence.harness import Harness, SideSummary

pytestmark = [pytest.mark.bpf, pytest.mark.usefixtures("bpf_ready")]

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
PAIRS = ("pipeline", "sigterm", "shcount")  # child programs, death by signal, a shell the program starts itself


@pytest.fixture(scope="module")
def harness():
    from sysweave.cli.runner import EbpfRunner

    h = Harness(str(EXAMPLES / "data"), 60, EbpfRunner())
    yield h
    h.close()


@pytest.fixture(scope="module")
def bins(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from sysweave.cli.demo import build

    out = tmp_path_factory.mktemp("bins")
    build(EXAMPLES, out, PAIRS)
    return out


def launchers(script: Path) -> dict[str, str]:
    real = os.path.realpath(sys.executable)
    s = shlex.quote(str(script))
    out = {"real path": f"{shlex.quote(real)} {s}", "env": f"env python3 {s}",
           "sh -c": f"sh -c {shlex.quote('python3 ' + s)}", "bash -c": f"bash -c {shlex.quote('python3 ' + s)}"}
    python3 = shutil.which("python3")
    if python3:
        out["python3 on PATH"] = f"{shlex.quote(python3)} {s}"
    return out


@pytest.mark.parametrize("name", PAIRS)
def test_launchers_give_the_same_verdict(name: str, harness: Harness, bins: Path) -> None:
    script = EXAMPLES / "pairs" / f"{name}.py"
    sides: dict[str, SideSummary] = {label: harness.run_side(cmd, 1) for label, cmd in launchers(script).items()}
    faithful, broken = harness.run_side(str(bins / name), 1), harness.run_side(str(bins / f"{name}-broken"), 1)
    reference = sides["real path"]
    for label, side in sides.items():
        v = compare(reference.obs, side.obs)
        assert v.verdict == "equivalent", f"{label}: {v.explanation}"
        assert compare(side.obs, faithful.obs).verdict == "equivalent", label
        assert compare(side.obs, broken.obs).verdict == "divergent", label


def test_capture_records_the_final_state_of_written_files(harness: Harness, tmp_path: Path) -> None:
    prog = tmp_path / "w.py"
    prog.write_text("import os\nos.mkdir('d')\nopen('d/x.tmp','w').write('hello')\nos.rename('d/x.tmp','d/x')\n"
                    "os.chmod('d/x', 0o600)\nos.symlink('d/x', 'link')\n")
    side = harness.run_side(f"{shlex.quote(sys.executable)} {prog}", 1)
    states = {os.path.relpath(e.path, e.cwd): e for e in side.runs[0].events if isinstance(e, FileState)}
    assert states["d"].type == "dir" and not states["d/x.tmp"].exists
    assert (states["d/x"].type, states["d/x"].mode, states["d/x"].content, states["d/x"].size) == ("file", 0o600, b"hello", 5)
    assert (states["link"].type, states["link"].target) == ("symlink", "d/x")
    assert set(side.obs.files) >= {"./d", "./d/x", "./link"} and "./d/x.tmp" not in side.obs.files
