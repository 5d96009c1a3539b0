"""Each component installs alone: in a fresh venv, with only its declared dependencies, every module imports.

One wheelhouse per session: the third-party requirements every component declares, as wheels
(``pip wheel``, kept in ``~/.cache/sysweave/wheelhouse`` so a rerun needs no network; filled from PyPI through
pip's own cache only when a requirement is missing), plus this checkout's six components built as wheels.
Each install is then ``pip install --no-index --find-links WHEELHOUSE 'sysweave-X[extras]'``: offline, and
nothing but what the component's pyproject.toml declares can be found (no editable path, no project venv).
The pure pipeline is checked without its Faust extra, and the validator is checked not to pull Faust in.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from source_tree import ROOT, module_files

# component folder -> (distribution with extras, modules that must NOT be importable there)
CASES: dict[str, tuple[str, tuple[str, ...]]] = {
    "schemas": ("sysweave-schemas", ("faust", "chdb", "kafka")),
    "agents/sdk": ("sysweave-sdk", ("msgpack",)),
    "agents": ("sysweave-agents[gpu]", ("faust", "chdb", "clickhouse_driver")),
    "streams": ("sysweave-streams", ("faust",)),
    "streams[worker]": ("sysweave-streams[worker]", ()),
    "validator": ("sysweave-validator", ("faust",)),
    "cli": ("sysweave-cli[full]", ()),
}
# modules that are not imported as modules of the package
NOT_IMPORTED = {
    "sysweave.agents.cupti_site.sitecustomize",  # put on PYTHONPATH of traced CUDA programs; chains their own
}
NEEDS_EXTRA = {"streams": {"sysweave.streams.worker"}}  # the Faust worker: extra "worker"
WHEELHOUSE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "sysweave" / "wheelhouse"
FOLDERS = ("schemas", "agents", "agents/sdk", "streams", "validator", "cli")


def _modules(folder: str) -> list[str]:
    return [m for m in module_files([folder]) if m not in NOT_IMPORTED]


def _third_party() -> list[str]:
    """Every requirement (extras included) the components declare that is not one of them."""
    reqs: set[str] = {"hatchling>=1.21"}  # the build backend, so local wheels build offline too
    for folder in FOLDERS:
        project = tomllib.loads((ROOT / folder / "pyproject.toml").read_text())["project"]
        declared = list(project.get("dependencies", []))
        for extra, deps in project.get("optional-dependencies", {}).items():
            if extra != "cupti":  # CUPTI wheels need a CUDA toolkit; its module imports it lazily
                declared += deps
        reqs |= {d for d in declared if not d.startswith("sysweave")}
    return sorted(reqs)


def _pip(*args: str, timeout: float = 1500) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pip", *args], capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def wheelhouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    WHEELHOUSE.mkdir(parents=True, exist_ok=True)
    reqs = _third_party()
    offline = _pip("wheel", "-q", "--no-index", "--find-links", str(WHEELHOUSE), "-w", str(WHEELHOUSE), *reqs)
    if offline.returncode != 0:  # something not yet in the wheelhouse: fetch it (through pip's cache)
        online = _pip("wheel", "-q", "-w", str(WHEELHOUSE), *reqs)
        assert online.returncode == 0, f"could not build the wheelhouse (PyPI reachable?):\n{online.stderr[-3000:]}"
    house = tmp_path_factory.mktemp("wheelhouse")
    for whl in WHEELHOUSE.glob("*.whl"):
        os.link(whl, house / whl.name) if whl.stat().st_dev == house.stat().st_dev else shutil.copy(whl, house)
    built = _pip("wheel", "-q", "--no-deps", "--no-index", "--find-links", str(house), "-w", str(house),
                 *(str(ROOT / f) for f in FOLDERS))
    assert built.returncode == 0, built.stderr[-3000:]
    return house


def _bcc_pth(venv: Path) -> None:
    """Debian's bcc (python3-bpfcc, not on PyPI) exposed as infra/setup.sh exposes it to the project venv."""
    site = next((venv / "lib").glob("python3*/site-packages"))
    if Path("/usr/lib/python3/dist-packages/bcc").is_dir():
        shim = venv / "debian-bcc"
        shim.mkdir()
        (shim / "bcc").symlink_to("/usr/lib/python3/dist-packages/bcc")
        (site / "debian-bcc.pth").write_text(f"{shim}\n")


_PROBE = """
import importlib, importlib.util, json, sys
mods, absent = json.loads(sys.argv[1]), json.loads(sys.argv[2])
failed = {}
for m in mods:
    try:
        importlib.import_module(m)
    except Exception as e:  # noqa: BLE001 - report every failure, not the first
        failed[m] = f"{type(e).__name__}: {e}"
present = [a for a in absent if importlib.util.find_spec(a) is not None]
print(json.dumps({"failed": failed, "present": present, "imported": len(mods) - len(failed)}))
"""


@pytest.mark.slow
@pytest.mark.timeout(3000)
@pytest.mark.parametrize("case", list(CASES))
def test_component_installs_alone_and_every_module_imports(case: str, wheelhouse: Path, tmp_path: Path) -> None:
    dist, absent = CASES[case]
    folder = case.split("[")[0]
    modules = [m for m in _modules(folder) if "[" in case or m not in NEEDS_EXTRA.get(folder, set())]
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    py = str(venv / "bin" / "python")
    inst = subprocess.run([py, "-m", "pip", "install", "-q", "--no-index", "--find-links", str(wheelhouse), dist],
                          capture_output=True, text=True, timeout=1200)
    assert inst.returncode == 0, f"{dist} does not install from its declared dependencies:\n{inst.stderr[-3000:]}"
    if folder == "agents":
        _bcc_pth(venv)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    res = subprocess.run([py, "-c", _PROBE, json.dumps(modules), json.dumps(list(absent))], capture_output=True,
                         text=True, timeout=600, cwd=tmp_path, env=env)
    assert res.returncode == 0, res.stderr[-3000:]
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out["failed"] == {}, f"{dist} alone: modules that do not import:\n" + "\n".join(
        f"  {m}: {why}" for m, why in out["failed"].items())
    assert out["present"] == [], f"{dist} pulls in {out['present']}"
    assert out["imported"] == len(modules) > 0
