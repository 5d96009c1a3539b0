"""sysweave.schemas: the data contract every sysweave component depends on.

Event model (``events``), wire codec (``codec``), causal clocks (``clocks``), Kafka topics and keys
(``topics``), ClickHouse DDL and migrations (``ddl``, ``sql/``), the column map and insert columns (``rows``,
``columns``), and the x86-64 syscall table
(``syscalls``). No I/O, no service clients: importable anywhere.
"""

# the public modules; each module's own __all__ marks its names
__all__ = ["clocks", "codec", "columns", "ddl", "errors", "events", "filestate", "rows", "syscall_table_x86_64", "topics"]
