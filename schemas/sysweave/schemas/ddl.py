"""ClickHouse DDL: one ``.sql`` file per table or view (package data under ``sql/``), applied in order.

File names are ``NNNN_name.sql``; NNNN is the migration version. Each holds exactly one statement that
runs on Debian's ClickHouse 18.16 server and on chdb (current ClickHouse), so there is one schema for the
embedded and the distributed store. :func:`migrate` records applied versions in ``sysweave_migrations`` and is
idempotent: a second run applies nothing, and a run interrupted between a statement and its record is
repaired by the statement's ``IF NOT EXISTS`` (or its ``when-exists`` guard, below).

Variants by server capability. A migration may come with ``NNNN_name.CAPABILITY.sql`` beside its plain file:
the variant runs instead of the plain file on a server that has the capability (:func:`capabilities`, from
``SELECT version()``; of several, the latest in ``CAPABILITIES``). ``codecs``: column codecs (Delta, DoubleDelta,
T64, ZSTD) and LowCardinality without experimental settings, ClickHouse >= 20.1; ``codecs22``: also table-level
compression block sizes, >= 22.8 and every chdb. Variants must declare the same columns with the same logical
types (codecs and ``LowCardinality(...)`` aside: :func:`logical_type`), so ``rows.TABLES`` stays the one column
map for all of them (``tests/contract/test_ddl.py`` checks each variant). Worked example, syscall_spans v2::

    0040_syscall_spans_v2.sql            CREATE TABLE ... (wall_ns UInt64, host_id String, ...)        18.16
    0040_syscall_spans_v2.codecs.sql     CREATE TABLE ... (wall_ns UInt64 CODEC(Delta, T64, ZSTD(3)),
                                                           host_id LowCardinality(String), ...)       20.1-22.7
    0040_syscall_spans_v2.codecs22.sql   the same + SETTINGS min_compress_block_size = 1048576        22.8+, chdb
    0041_syscall_spans_v2.sql            INSERT INTO syscall_spans_v2 ... SELECT ... FROM syscall_spans  (v1 rows)
    0042_trace_index.sql                 DROP TABLE IF EXISTS trace_index          (the view reading syscall_spans)
    0043_syscall_spans.sql               -- when-exists: syscall_spans_v2
                                         RENAME TABLE syscall_spans TO syscall_spans_v1, syscall_spans_v2 TO syscall_spans
    0044_syscall_spans_v1.sql            DROP TABLE IF EXISTS syscall_spans_v1
    0045_trace_index.sql                 CREATE MATERIALIZED VIEW IF NOT EXISTS trace_index ... POPULATE ...

A store made by the previous schema upgrades in place (its spans are copied, the view refilled); a new store
runs the same steps over empty tables. A server upgraded from 18.16 to >= 20 keeps the variant it was created
with (migrations apply once); rebuild with the next table version to get codecs there.

Directives are comment lines (stripped from the statement): ``-- when-exists: TABLE`` runs the statement only
while TABLE exists (``EXISTS TABLE``, on every version), for statements without ``IF [NOT] EXISTS`` such as
``RENAME``; otherwise the migration is recorded as applied without running.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

__all__ = ["CAPABILITIES", "EVENT_TABLES", "MIGRATIONS_TABLE", "Migration", "capabilities", "load_migrations",
           "logical_type", "migrate", "pending", "prune_statements", "supports_ttl", "ttl_statements"]

MIGRATIONS_TABLE = (
    "CREATE TABLE IF NOT EXISTS sysweave_migrations (version UInt32, name String, applied_wall_ns UInt64) "
    "ENGINE = ReplacingMergeTree ORDER BY version"
)
_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)(?:\.([a-z0-9_]+))?\.sql$")
_WHEN_EXISTS = re.compile(r"^\s*--\s*when-exists:\s*([A-Za-z_][A-Za-z0-9_]*)\s*$", re.M)
CAPABILITIES = ("codecs", "codecs22")  # in increasing order: a migration runs its latest variant the server has


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str  # the table or view it creates
    sql: str  # one statement, comments stripped
    variants: tuple[tuple[str, str], ...] = ()  # (capability, statement) run instead of ``sql`` where supported
    when_exists: str = ""  # run only while this table exists (the ``-- when-exists:`` directive)

    def statement(self, caps: frozenset[str]) -> str:
        ranked = sorted(((CAPABILITIES.index(cap), sql) for cap, sql in self.variants if cap in caps), reverse=True)
        return ranked[0][1] if ranked else self.sql


def _statement(text: str) -> str:
    return "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("--")).strip()


def load_migrations() -> list[Migration]:
    plain: dict[int, tuple[str, str, str]] = {}
    variants: dict[int, list[tuple[str, str]]] = {}
    for entry in resources.files("sysweave.schemas").joinpath("sql").iterdir():
        m = _NAME.match(entry.name)
        if not m:
            continue
        text = entry.read_text(encoding="utf-8")
        version = int(m.group(1))
        if m.group(3):
            if m.group(3) not in CAPABILITIES:
                raise RuntimeError(f"{entry.name}: unknown capability {m.group(3)!r} (known: {CAPABILITIES})")
            variants.setdefault(version, []).append((m.group(3), _statement(text)))
            continue
        if version in plain:
            raise RuntimeError(f"duplicate migration version {version} in sysweave/schemas/sql")
        guard = _WHEN_EXISTS.search(text)
        plain[version] = (m.group(2), _statement(text), guard.group(1) if guard else "")
    if set(variants) - set(plain):
        raise RuntimeError(f"capability variants without a plain migration: {sorted(set(variants) - set(plain))}")
    return [Migration(v, name, sql, tuple(sorted(variants.get(v, []))), guard)
            for v, (name, sql, guard) in sorted(plain.items())]


def _version(server_version: str) -> tuple[int, int]:
    parts = [int(p) for p in re.findall(r"\d+", server_version)[:2]] + [0, 0]
    return parts[0], parts[1]


def capabilities(server_version: str) -> frozenset[str]:
    """What the server's DDL may use beyond 18.16's: ``codecs`` (column codecs, LowCardinality without experimental
    settings) from 20.1; ``codecs22`` (also table-level compression block sizes) from 22.8. chdb is 26.x: both."""
    v = _version(server_version)
    return frozenset(cap for cap, since in (("codecs", (20, 1)), ("codecs22", (22, 8))) if v >= since)


def logical_type(ch_type: str) -> str:
    """A DESCRIBE type without storage-only wrappers: 'LowCardinality(String)' -> 'String'."""
    m = re.fullmatch(r"LowCardinality\((.*)\)", ch_type)
    return m.group(1) if m else ch_type


def _not_recorded(execute: Callable[[str], Sequence[Sequence[Any]]]) -> list[Migration]:
    applied = {int(row[0]) for row in execute("SELECT DISTINCT version FROM sysweave_migrations")}
    return [mig for mig in load_migrations() if mig.version not in applied]


def pending(execute: Callable[[str], Sequence[Sequence[Any]]]) -> list[Migration]:
    """The migrations not yet recorded, read only (no table is created): a store already up to date is opened
    without taking the migration lock (``validator.store.migration_lock``)."""
    if not int(execute("EXISTS TABLE sysweave_migrations")[0][0]):
        return load_migrations()
    return _not_recorded(execute)


def migrate(execute: Callable[[str], Sequence[Sequence[Any]]], server_version: str | None = None) -> list[Migration]:
    """Apply the migrations not yet recorded; return those applied.

    ``execute(sql)`` runs one statement in the target database and returns its rows (empty for DDL).
    ``server_version`` (else ``SELECT version()``) chooses each migration's capability variant.
    Not safe to run concurrently on one database (18.16 has no ``ADD COLUMN IF NOT EXISTS``; a copy migration
    run twice doubles its rows): a server store runs it under ``validator.store.migration_lock``.
    """
    execute(MIGRATIONS_TABLE)
    done = []
    caps: frozenset[str] | None = None
    for mig in _not_recorded(execute):
        if caps is None:
            caps = capabilities(server_version or str(execute("SELECT version()")[0][0]))
        if not mig.when_exists or int(execute(f"EXISTS TABLE {mig.when_exists}")[0][0]):
            execute(mig.statement(caps))
        # INSERT ... SELECT, not VALUES: clickhouse-driver treats a VALUES insert as a data-block insert
        execute(f"INSERT INTO sysweave_migrations (version, name, applied_wall_ns) "
                f"SELECT {mig.version}, '{mig.name}', {time.time_ns()}")
        done.append(mig)
    return done


# Tables whose rows age out under a retention policy (traces/processes/validations are kept: they are small).
EVENT_TABLES = ("syscall_spans", "process_events", "syscall_aggregates", "gpu_kernels", "gpu_transfers",
                "compute_blocks", "transpiler_decisions", "causal_edges", "clock_estimates", "lost_events", "hosts",
                "file_states", "gpu_samples", "function_aggregates", "marks")


def supports_ttl(server_version: str) -> bool:
    """Table TTL arrived in ClickHouse 19.6; Debian's 18.16 has none (use ``prune_statements`` there)."""
    return _version(server_version) >= (19, 6)


def ttl_statements(days: int) -> list[str]:
    """``ALTER TABLE ... MODIFY TTL`` for every event table: rows older than ``days`` (by wall clock) expire."""
    if days <= 0:
        raise ValueError("retention must be at least 1 day")
    return [f"ALTER TABLE {t} MODIFY TTL toDateTime(intDiv(wall_ns, 1000000000)) + INTERVAL {days} DAY"
            for t in EVENT_TABLES]


def prune_statements(partitions: Sequence[tuple[str, str]], days: int, now_s: float | None = None) -> list[str]:
    """Retention without TTL: drop monthly partitions (``toYYYYMM``) that end before the cutoff.

    ``partitions`` are (table, partition id) pairs from system.parts. Example: cutoff 2026-11-28 minus 90 days
    = 2026-08-30, so partition 202607 (July) is dropped and 202608 is kept (it holds days after the cutoff)."""
    cutoff = time.gmtime((now_s if now_s is not None else time.time()) - days * 86400)
    keep_from = cutoff.tm_year * 100 + cutoff.tm_mon
    return [f"ALTER TABLE {t} DROP PARTITION {pid}" for t, pid in sorted(set(partitions))
            if t in EVENT_TABLES and pid.isdigit() and int(pid) < keep_from]
