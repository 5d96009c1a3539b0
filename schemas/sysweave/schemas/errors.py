"""The one exception root of sysweave, and the tree each component hangs under it.

Every error sysweave raises on purpose derives from :class:`SysweaveError`, so a caller (the CLI, a service
loop) can catch one thing; library errors (bcc, kafka-python, clickhouse-driver, chdb, OpenTelemetry) are
translated into these at the boundary where they occur, with what to do in the message::

    SysweaveError
      ├── SchemaError                      sysweave.schemas
      │     ├── DecodeError                  codec: bad bytes / types / versions, names the position
      │     ├── ClockSkewError               clocks: a remote HLC too far ahead of physical time
      │     └── MessageError                 topics: a malformed control / validation-request message
      ├── AgentError                       sysweave.agents
      │     ├── CaptureError                 capture could not start or continue
      │     │     ├── BpfUnavailable           bcc missing, no privileges, no headers/tracefs
      │     │     └── TargetError              a pid / cgroup / symbol to attach to does not exist
      │     ├── RecordError                  a ring-buffer record not in the expected layout (version skew)
      │     ├── ContractError                syscalls.h says what the parser does not understand
      │     ├── ObjectError                  a pinned BPF object operation failed (names object and errno)
      │     ├── BuildError                   a CO-RE object could not be built (names the missing tool)
      │     ├── SpecError                    a bad ``--uprobe`` spec (shows the grammar)
      │     ├── ElfError                     a file to probe is no readable 64-bit ELF object (names the file)
      │     ├── PublishError                 Kafka producer could not be created
      │     ├── DecisionLogError             a decision log that cannot be read at all
      │     ├── SdkDatagramError             an SDK datagram that cannot become an event (counted)
      │     ├── ScratchError                 a run's private /tmp could not be set up
      │     └── GpuUnavailable               no NVML / CUPTI here
      ├── StreamError                      sysweave.streams
      │     └── InconsistentClocks           clock constraints with no common solution
      ├── ValidatorError                   sysweave.validator
      │     ├── HarnessError                 a validation run could not be decided
      │     │     └── Undecided                the capture lost evidence in every rerun (no verdict from a guess)
      │     ├── CaseError                    a bad case file or case option (validate --cases, --stdin)
      │     ├── StoreError                   trace history (chdb or server)
      │     │     ├── StoreUnavailable         cannot open / reach the store (after retries)
      │     │     ├── QueryError               the user's SQL failed
      │     │     ├── TraceNotFound            no such trace id or label
      │     │     │     └── AmbiguousTrace         a label or id prefix that names several traces
      │     │     └── SinkError                writing to the ClickHouse server
      │     │           ├── SinkUnavailable      the server cannot be reached (after retries; also a StoreUnavailable)
      │     │           │     └── MigrationLocked      another process held the schema-migration lock past the wait
      │     │           └── SinkRejected         the server refused the data (schema mismatch)
      │     └── ExportError                  OTLP / Perfetto export
      │           └── ExportUnavailable        the endpoint refused the spans
      └── CliError                         sysweave.cli
            ├── FilterError                  a bad ``-e trace=`` expression
            └── TopicsUnavailable            the broker cannot be reached or refused to create a topic

Each class's parent in the drawing is its first base that is a :class:`SysweaveError` (``tests/test_errors_tree.py``
keeps the drawing and the classes of every package equal).

Component roots live here (the contract every component imports); the leaves live beside their code.
"""

from __future__ import annotations

__all__ = ["AgentError", "CliError", "SchemaError", "StreamError", "SysweaveError", "ValidatorError"]


class SysweaveError(Exception):
    """Root of every error sysweave raises on purpose."""


class SchemaError(SysweaveError, ValueError):
    """Data that does not satisfy the contract (wire format, messages, clocks)."""


class AgentError(SysweaveError):
    """Host capture and publishing."""


class StreamError(SysweaveError):
    """The stream pipeline."""


class ValidatorError(SysweaveError):
    """Equivalence, the trace store and exports."""


class CliError(SysweaveError):
    """The command line: what the user asked for cannot be done as asked."""
