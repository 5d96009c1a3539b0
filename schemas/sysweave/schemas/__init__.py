"""sysweave.schemas: the data contract every sysweave component depends on.

Event model (``events``), wire codec (``codec``), causal clocks (``clocks``), Kafka topics and keys
(``topics``), ClickHouse DDL and migrations (``ddl``, ``sql/``), and the x86-64 syscall table
(``syscalls``). No I/O, no service clients: importable anywhere.
"""
