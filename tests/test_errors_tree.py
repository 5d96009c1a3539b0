"""The exception tree drawn in schemas/errors.py is the tree of SysweaveError's subclasses across every package."""

from __future__ import annotations

import json
import re
import subprocess
import sys

from source_tree import module_files
from sysweave.schemas import errors

FOLDERS = ("schemas", "agents", "agents/sdk", "streams", "validator", "cli")
NOT_IMPORTED = {"sysweave.agents.cupti_site.sitecustomize"}  # injected into traced CUDA programs


def drawn_tree(doc: str) -> dict[str, str]:
    """class name -> its parent's name, from the box drawing (the root maps to "")."""
    parents: dict[str, str] = {}
    stack: list[tuple[int, str]] = []  # (column of the name, name)
    for line in doc.splitlines():
        m = re.match(r"^(?P<pre>[ │├└─]*)(?P<name>[A-Z]\w*)\b", line)
        if m is None or (not stack and m["name"] != "SysweaveError"):
            continue
        if stack and not re.search(r"[├└]── $", m["pre"]):
            break  # the drawing ended
        col = len(m["pre"])
        while stack and stack[-1][0] >= col:
            stack.pop()
        parents[m["name"]] = stack[-1][1] if stack else ""
        stack.append((col, m["name"]))
    return parents


_PROBE = """
import importlib, json, sys
for m in json.loads(sys.argv[1]):
    importlib.import_module(m)
from sysweave.schemas.errors import SysweaveError
out, todo = {}, [SysweaveError]
while todo:
    c = todo.pop()
    for s in c.__subclasses__():
        if s.__module__.startswith("sysweave."):
            out[s.__name__] = next(b.__name__ for b in s.__bases__ if issubclass(b, SysweaveError))
            todo.append(s)
print(json.dumps(out))
"""


def _modules() -> list[str]:
    return [m for m in module_files(FOLDERS) if m not in NOT_IMPORTED]


def test_the_drawing_parser_reads_nesting() -> None:
    doc = "x\n    SysweaveError\n      ├── A   a\n      │     └── B   b\n      └── C\n\nAfter\n"
    assert drawn_tree(doc) == {"SysweaveError": "", "A": "SysweaveError", "B": "A", "C": "SysweaveError"}


def test_drawn_exception_tree_matches_the_classes() -> None:
    res = subprocess.run([sys.executable, "-c", _PROBE, json.dumps(_modules())], capture_output=True, text=True,
                         timeout=240, check=True)
    actual = {**json.loads(res.stdout), "SysweaveError": ""}
    drawn = drawn_tree(errors.__doc__ or "")
    missing = sorted(set(actual) - set(drawn))
    stale = sorted(set(drawn) - set(actual))
    moved = sorted(f"{n}: drawn under {drawn[n]}, derives from {actual[n]}" for n in set(drawn) & set(actual)
                   if drawn[n] != actual[n])
    assert not (missing or stale or moved), f"not drawn: {missing}; drawn but absent: {stale}; moved: {moved}"
