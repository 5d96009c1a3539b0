"""Packaging contract: one namespace, the host agent without faust/clickhouse-driver, no module twice."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COMPONENTS = ("schemas", "agents", "streams", "validator")


def test_components_share_the_namespace_without_init() -> None:
    for comp in COMPONENTS:
        assert (ROOT / comp / "sysweave").is_dir()
        assert not (ROOT / comp / "sysweave" / "__init__.py").exists(), f"{comp}/sysweave must be a PEP 420 portion"


def test_agent_distribution_has_no_heavy_dependencies() -> None:
    deps = tomllib.loads((ROOT / "agents" / "pyproject.toml").read_text())["project"]["dependencies"]
    assert not [d for d in deps if d.startswith(("faust", "clickhouse-driver", "chdb"))]


def test_agent_imports_pull_in_no_faust_or_clickhouse_driver() -> None:
    code = ("import sys, sysweave.agents, sysweave.schemas.codec, sysweave.cli.main; "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('faust', 'clickhouse_driver')]; print(bad)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_no_module_importable_under_two_names() -> None:
    for comp in COMPONENTS:
        pkg = ROOT / comp / "sysweave"
        for py in pkg.rglob("*.py"):
            # every module lives under sysweave.<component>... or sysweave.cli; nothing sits at the top level
            rel = py.relative_to(pkg)
            assert len(rel.parts) >= 2, f"{py} would be importable as a top-level sysweave module"
