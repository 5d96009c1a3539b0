"""`make run` installs only what the main job needs: `infra/setup.sh core` never reaches for the tools that build
or fetch the suite's services (Go for Jaeger/helm, Maven/Java for Kafka, npm), and `make setup` is the full one."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from .conftest import ROOT


def test_core_setup_builds_no_service_or_tool(tmp_path: Path) -> None:
    trap = tmp_path / "bin"
    trap.mkdir()
    called = tmp_path / "called"
    for tool in ("go", "mvn", "java", "npm", "clickhouse-server"):
        (trap / tool).write_text(f"#!/bin/sh\necho {tool} >> {called}\nexit 1\n")
        (trap / tool).chmod(0o755)
    out = subprocess.run(["bash", str(ROOT / "infra/setup.sh"), "core"], capture_output=True, text=True, timeout=600,
                         env={**os.environ, "PATH": f"{trap}:{os.environ['PATH']}"})
    assert out.returncode == 0, out.stdout + out.stderr
    assert "ready (core" in out.stdout
    assert not called.exists(), f"core setup ran {called.read_text()}"


def test_make_targets_pick_the_right_setup() -> None:
    make = (ROOT / "Makefile").read_text()
    assert re.search(r"^run: setup-core\b", make, re.M) and re.search(r"^test: setup\b", make, re.M)
    assert re.search(r"^setup-core:.*\n\t@bash infra/setup.sh core$", make, re.M)
    assert re.search(r"^setup:.*\n\t@bash infra/setup.sh full$", make, re.M)
    bad = subprocess.run(["bash", str(ROOT / "infra/setup.sh"), "everything"], capture_output=True, text=True)
    assert bad.returncode == 2 and "usage: infra/setup.sh core|full" in bad.stderr
