"""What every trace store shares: the errors, and the :class:`TraceStore` interface.

Errors (under ``ValidatorError``, see ``sysweave.schemas.errors``)::

    StoreError
      ├── StoreUnavailable   -- the store cannot be opened or reached (path not writable, server down)
      ├── QueryError         -- the user's SQL failed; the message is ClickHouse's, plus what to do
      └── TraceNotFound      -- no trace with that id or label
"""

from __future__ import annotations

from sysweave.schemas.errors import ValidatorError

__all__ = ["QueryError", "StoreError", "StoreUnavailable", "TraceNotFound"]


class StoreError(ValidatorError):
    pass


class StoreUnavailable(StoreError):
    pass


class QueryError(StoreError):
    pass


class TraceNotFound(StoreError, LookupError):
    pass
