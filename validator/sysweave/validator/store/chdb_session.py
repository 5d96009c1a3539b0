"""The process's one in-memory chdb session (chdb runs one engine per process), shared by the embedded store's
reads and its compaction — a module of its own so that neither has to import the other."""

from __future__ import annotations

import importlib
from typing import Any

from sysweave.validator.store.base import StoreUnavailable

__all__ = ["close_session", "shared_session"]

_SESSION: list[Any] = []


def shared_session() -> Any:
    """The process's in-memory chdb session (started on first use)."""
    if not _SESSION:
        try:
            session: Any = importlib.import_module("chdb.session")
        except ImportError as exc:
            raise StoreUnavailable("reading the store needs chdb: pip install chdb (or run 'make setup')") from exc
        s = session.Session()
        s.query("SET output_format_arrow_string_as_string = 0")  # Strings as binary: exact bytes
        _SESSION.append(s)
    return _SESSION[0]


def close_session() -> None:
    """End the session if one is open (the next :func:`shared_session` starts a new one)."""
    if _SESSION:
        _SESSION.pop().close()
