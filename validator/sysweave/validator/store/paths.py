"""Where the embedded store lives by default (a module of its own: ``sysweave trace --help`` shows the path
without importing the store)."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["default_store_path"]


def default_store_path() -> Path:
    """$SYSWEAVE_STORE, else $XDG_DATA_HOME/sysweave/store, else ~/.local/share/sysweave/store."""
    if os.environ.get("SYSWEAVE_STORE"):
        return Path(os.environ["SYSWEAVE_STORE"])
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(base) / "sysweave" / "store"
