"""sysweave.schemas: the data contract every sysweave component depends on.

Event model (``events``), wire codec (``codec``; columnar decoding ``wirecols`` and its checks ``wirechecks``),
causal clocks (``clocks``), Kafka topics and keys (``topics``), ClickHouse DDL and migrations (``ddl``, ``sql/``),
the column map and insert columns (``rows``, ``columns``, text and JSON columns ``textcodec``), file states
(``filestate``, ``fscalls``), and the x86-64 syscall table (``syscall_table_x86_64``). No I/O, no service
clients: importable anywhere.
"""

# the public modules; each module's own __all__ marks its names
__all__ = ["clocks", "codec", "columns", "ddl", "errors", "events", "filestate", "fscalls", "rows", "syscall_table_x86_64",
           "textcodec", "topics", "wirechecks", "wirecols"]
