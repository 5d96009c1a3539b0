"""Packaging and layering contract: one namespace, stages that import only what lies upstream of them.

    schemas  <-  agents
    schemas  <-  streams.pipeline  <-  streams (buffer, sampling)  <-  streams.worker (faust)
    schemas  <-  streams.pipeline  <-  validator
    cli: the only code that imports agents and validator (and the Faust worker) together
"""

from __future__ import annotations

import ast
import subprocess
import sys
import tomllib
from pathlib import Path

from source_tree import ROOT, module_files

COMPONENTS = ("schemas", "agents", "streams", "validator", "cli")
MAX_MODULE_LINES = 520


def _modules() -> dict[str, Path]:
    return module_files(COMPONENTS)


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return {m for m in found if m.startswith("sysweave.")}


def _stage(module: str) -> str:
    parts = module.split(".")
    if parts[1] == "streams" and len(parts) > 2 and parts[2] in ("pipeline", "worker"):
        return f"streams.{parts[2]}"
    return parts[1]


# what each stage may import (besides itself)
ALLOWED = {
    "schemas": set(),
    "sdk": set(),
    "agents": {"schemas"},
    "streams.pipeline": {"schemas"},
    "streams": {"schemas", "streams.pipeline"},
    "streams.worker": {"schemas", "streams.pipeline", "streams"},
    "validator": {"schemas", "streams.pipeline"},
    "cli": {"schemas", "sdk", "agents", "streams.pipeline", "streams", "streams.worker", "validator"},
}


def test_components_share_the_namespace_without_init() -> None:
    for comp in COMPONENTS:
        assert (ROOT / comp / "sysweave").is_dir()
        assert not (ROOT / comp / "sysweave" / "__init__.py").exists(), f"{comp}/sysweave must be a PEP 420 portion"


def test_every_stage_imports_only_what_lies_upstream() -> None:
    bad = []
    for module, path in _modules().items():
        stage = _stage(module)
        for imp in _imports(path):
            target = _stage(imp)
            if target != stage and target not in ALLOWED[stage]:
                bad.append(f"{module} ({stage}) imports {imp} ({target})")
    assert not bad, "layering violations:\n" + "\n".join(bad)


def test_only_the_cli_imports_agents_and_validator_together() -> None:
    for module, path in _modules().items():
        stages = {_stage(i) for i in _imports(path)}
        if {"agents", "validator"} <= stages:
            assert _stage(module) == "cli", module


def test_no_module_reaches_into_another_modules_private_names() -> None:
    bad = []
    for module, path in _modules().items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("sysweave."):
                bad += [f"{module}: from {node.module} import {a.name}" for a in node.names
                        if a.name.startswith("_") and node.module != module]
    assert not bad, "\n".join(bad)


def test_modules_stay_small() -> None:
    big = {m: n for m, p in _modules().items() if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES
           and not m.endswith("syscall_table_x86_64")}  # generated table
    assert not big, big


def test_agent_distribution_has_no_heavy_dependencies() -> None:
    for comp in ("agents", "schemas"):
        deps = tomllib.loads((ROOT / comp / "pyproject.toml").read_text())["project"]["dependencies"]
        assert not [d for d in deps if d.startswith(("faust", "clickhouse-driver", "chdb"))], comp
    cli_deps = tomllib.loads((ROOT / "cli" / "pyproject.toml").read_text())["project"]["dependencies"]
    assert not [d for d in cli_deps if d.startswith(("faust", "clickhouse-driver", "chdb", "sysweave-streams",
                                                       "sysweave-validator"))]


_BLOCK = ("import sys, importlib.abc\n"
          "class Block(importlib.abc.MetaPathFinder):\n"
          "    def find_spec(self, name, path=None, target=None):\n"
          "        if name.split('.')[0] in ('faust', 'kafka', 'bcc', 'clickhouse_driver', 'chdb', 'aiokafka'):\n"
          "            raise ImportError(f'blocked: {name}', name=name)\n"
          "sys.meta_path.insert(0, Block())\n")


def test_agent_imports_pull_in_no_faust_or_clickhouse_driver() -> None:
    code = ("import sys, sysweave.agents.daemon, sysweave.schemas.codec, sysweave.cli.main; "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('faust', 'clickhouse_driver', 'chdb')]; print(bad)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_pipeline_and_validator_import_without_faust_kafka_or_bcc() -> None:
    code = _BLOCK + ("import sysweave.streams.pipeline, sysweave.streams.buffer, sysweave.streams.sampling\n"
                     "import sysweave.validator.equivalence.compare, sysweave.validator.equivalence.harness\n"
                     "print('ok')\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.stdout.strip() == "ok", res.stderr


def test_every_module_declares_its_public_surface() -> None:
    missing = []
    for m, p in _modules().items():
        body = ast.parse(p.read_text()).body
        if not any(isinstance(n, (ast.Assign, ast.AnnAssign)) and "__all__" in {
                t.id for t in (n.targets if isinstance(n, ast.Assign) else [n.target]) if isinstance(t, ast.Name)}
                for n in body):
            missing.append(m)
    assert not missing, f"modules without __all__: {missing}"


# underscored names that are public API: namedtuple's methods, os._exit, sys._getframe; chdb._chdb (in chdb's
# __all__: the in-memory connection without chdb.session's pyarrow import)
_PUBLIC_PRIVATES = frozenset({"_replace", "_asdict", "_fields", "_make", "_exit", "_getframe", "_chdb"})


def reach_ins(source: str) -> list[str]:
    """``obj._name`` where ``_name`` is not defined in this module (not a method, attribute, variable,
    parameter or import of its own): a reach into another module's private state."""
    tree = ast.parse(source)
    own: set[str] = set()
    for n in ast.walk(tree):
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            own.add(n.name)
        elif isinstance(n, ast.Attribute) and isinstance(n.ctx, ast.Store):
            own.add(n.attr)
        elif isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store):
            own.add(n.id)
        elif isinstance(n, ast.arg):
            own.add(n.arg)
        elif isinstance(n, ast.alias):
            own.add(n.asname or n.name.split(".")[0])
    return [f"line {n.lineno}: .{n.attr}" for n in ast.walk(tree)
            if isinstance(n, ast.Attribute) and n.attr.startswith("_") and not n.attr.startswith("__")
            and n.attr not in own and n.attr not in _PUBLIC_PRIVATES]


def test_reach_in_finder() -> None:
    assert reach_ins("def f(buf):\n    return buf._open\n") == ["line 2: ._open"]
    assert reach_ins("class A:\n    def __init__(self):\n        self._n = 1\n    def g(self, o):\n"
                     "        return o._n\n") == []  # the module's own private attribute
    assert reach_ins("import os\nos._exit(0)\n") == []


def test_no_module_reaches_into_another_modules_private_attributes() -> None:
    bad = [f"{m} {hit}" for m, p in _modules().items() for hit in reach_ins(p.read_text())]
    assert not bad, "\n".join(bad)


def _import_graph() -> dict[str, set[str]]:
    """module -> the sysweave modules it imports (anywhere in it: under TYPE_CHECKING and inside functions
    too; ``from pkg import mod`` counts as importing ``pkg.mod``)."""
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                for a in node.names:
                    sub = f"{node.module}.{a.name}"
                    found.add(sub if sub in modules else node.module)
        graph[module] = {m for m in found if m in modules and m != module}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            v, children = work[-1]
            w = next(children, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = len(index)
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(graph[w]))))
                elif w in on_stack:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    out.append(sorted(comp))
    return out


def test_cycle_finder_finds_a_circle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert _cycles(graph) == [["a", "b", "c"]]


def test_no_import_cycles() -> None:
    cycles = _cycles(_import_graph())
    assert not cycles, "import cycles (break them with a module both sides import):\n" + "\n".join(map(str, cycles))
