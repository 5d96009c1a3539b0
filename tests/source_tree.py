"""The project's source modules as the tests that check the tree see them (layering, install-alone, the
exception drawing): one walk over each component's ``sysweave`` package, shared so they agree on what a
module is."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

__all__ = ["ROOT", "module_files"]

ROOT = Path(__file__).resolve().parents[1]


def module_files(folders: Iterable[str]) -> dict[str, Path]:
    """Dotted module name -> its file, for every ``.py`` under ``<folder>/sysweave`` (a package's
    ``__init__`` named as the package), folders relative to the repository root, in sorted order."""
    out: dict[str, Path] = {}
    for folder in folders:
        base = ROOT / folder
        for py in sorted((base / "sysweave").rglob("*.py")):
            parts = list(py.relative_to(base).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join(parts)] = py
    return out
