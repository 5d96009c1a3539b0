"""Trace history in ClickHouse: the embedded store (chdb) and the server (clickhouse-driver)."""

__all__ = ["base", "embedded", "named_queries", "reader", "server"]  # the public modules; each module's own __all__ marks its names
