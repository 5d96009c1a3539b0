"""The process's chdb session for reading embedded stores (and merging their parts).

chdb runs one engine per process: every store object shares one in-memory session, started on first use
(importing chdb costs ~0.3 s, so only reads pay it). ``DEFINED`` records which store's parts each view reads
(``views``); :func:`close_session` ends the session, after which a chdb session on a directory (``upgrade``) may start.
"""

from __future__ import annotations

import importlib
import threading
from typing import Any

from sysweave.validator.store.base import StoreUnavailable

__all__ = ["DEFINED", "LOCK", "close_session", "shared_session"]

_SESSION: list[Any] = []
DEFINED: dict[str, str] = {}  # view name -> the parts directory it reads
LOCK = threading.Lock()  # one statement at a time: views are redefined between statements


def shared_session() -> Any:
    """The in-memory chdb session (started on first use)."""
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
    """End the session if one is open, and forget its views (the next :func:`shared_session` starts anew)."""
    with LOCK:
        if _SESSION:
            _SESSION.pop().close()
        DEFINED.clear()
