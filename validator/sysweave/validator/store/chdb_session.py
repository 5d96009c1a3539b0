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

__all__ = ["DEFINED", "LOCK", "Session", "close_session", "shared_session"]

DEFINED: dict[str, str] = {}  # view name -> the parts directory it reads
LOCK = threading.Lock()  # one statement at a time: views are redefined between statements


class Session:
    """An in-memory chdb connection: ``query(sql, fmt)`` returns chdb's result (``.bytes()``), or for ``fmt``
    "ArrowTable" a pyarrow Table. Built on ``chdb._chdb.connect`` (in chdb's ``__all__``), not ``chdb.session``,
    which imports pyarrow and numpy (0.2 s) even where the result is text: ``sysweave query`` imports neither."""

    def __init__(self) -> None:
        chdb: Any = importlib.import_module("chdb")
        self._conn = chdb._chdb.connect(":memory:")
        self.query("SET output_format_arrow_string_as_string = 0")  # Strings as binary: exact bytes

    def query(self, sql: str, fmt: str = "CSV") -> Any:
        if fmt != "ArrowTable":
            return self._conn.query(sql, fmt)
        pa: Any = importlib.import_module("pyarrow")
        data = self._conn.query(sql, "Arrow").bytes()
        if not data:
            return pa.table({})
        return pa.ipc.open_file(pa.py_buffer(data)).read_all()

    def close(self) -> None:
        self._conn.close()


_SESSION: list[Session] = []


def shared_session() -> Session:
    """The in-memory chdb session (started on first use)."""
    if not _SESSION:
        try:
            _SESSION.append(Session())
        except ImportError as exc:
            raise StoreUnavailable("reading the store needs chdb: pip install chdb (or run 'make setup')") from exc
    return _SESSION[0]


def close_session() -> None:
    """End the session if one is open, and forget its views (the next :func:`shared_session` starts anew)."""
    with LOCK:
        if _SESSION:
            _SESSION.pop().close()
        DEFINED.clear()
