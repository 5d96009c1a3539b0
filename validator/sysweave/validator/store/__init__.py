"""Trace history in ClickHouse: the embedded store (parts on a directory, read with chdb) and the server
(clickhouse-driver), one interface.

    store = open_store(None)                                   # the default embedded store
    store = open_store("/path/to/store")                       # an embedded store on that directory
    store = open_store("clickhouse://127.0.0.1:9000/sysweave")  # a ClickHouse server database
    store.store_trace(trace); store.load_trace("my-label"); store.query("SELECT ...", "csv"); store.close()

The interface and the errors: ``base`` (``TraceStore``, ``StoreError`` and its tree).
"""

from __future__ import annotations

from pathlib import Path

from sysweave.validator.store.base import TraceStore
from sysweave.validator.store.url import is_server_url

__all__ = ["autocompact", "base", "chdb_session", "compact", "embedded", "formats", "is_server_url", "migration_lock",
           "named_queries", "native", "open_store", "parts", "paths", "reader", "retry", "server", "upgrade", "url",
           "views"]


def open_store(target: str | Path | None = None, migrate: bool = True) -> TraceStore:
    """``clickhouse://HOST:PORT/DB`` -> the server store; a path -> the embedded store there; None -> the
    default embedded store ($SYSWEAVE_STORE or ~/.local/share/sysweave/store). Migrates unless told not to."""
    if is_server_url(target):
        from sysweave.validator.store.retry import RetryPolicy
        from sysweave.validator.store.server import ServerStore

        # a command line waits seconds, not the service's minute, for a server that is down
        store = ServerStore(str(target), policy=RetryPolicy(deadline_s=8.0))
        try:
            if migrate:
                store.migrate()
            else:
                store.server_version()  # fail here, with the what-to-do message, if it is unreachable
        except BaseException:
            store.close()
            raise
        return store
    from sysweave.validator.store.embedded import EmbeddedStore
    from sysweave.validator.store.paths import default_store_path

    return EmbeddedStore(target if target else default_store_path(), migrate=migrate)
