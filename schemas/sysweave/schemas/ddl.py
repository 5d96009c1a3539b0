"""ClickHouse DDL: one ``.sql`` file per table or view (package data under ``sql/``), applied in order.

File names are ``NNNN_name.sql``; NNNN is the migration version. Each file holds exactly one statement that
runs unchanged on Debian's ClickHouse 18.16 server and on chdb (current ClickHouse), so there is one schema
for the embedded and the distributed store. :func:`migrate` records applied versions in
``sysweave_migrations`` and is idempotent: a second run applies nothing, and a run interrupted between a
statement and its record is repaired by the statement's ``IF NOT EXISTS``.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

MIGRATIONS_TABLE = (
    "CREATE TABLE IF NOT EXISTS sysweave_migrations (version UInt32, name String, applied_wall_ns UInt64) "
    "ENGINE = ReplacingMergeTree ORDER BY version"
)
_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str  # the table or view it creates
    sql: str  # one statement, comments stripped


def load_migrations() -> list[Migration]:
    out = []
    for entry in resources.files("sysweave.schemas").joinpath("sql").iterdir():
        m = _NAME.match(entry.name)
        if not m:
            continue
        text = entry.read_text(encoding="utf-8")
        sql = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("--")).strip()
        out.append(Migration(int(m.group(1)), m.group(2), sql))
    out.sort(key=lambda m: m.version)
    versions = [m.version for m in out]
    if len(set(versions)) != len(versions):
        raise RuntimeError(f"duplicate migration versions in sysweave/schemas/sql: {versions}")
    return out


def migrate(execute: Callable[[str], Sequence[Sequence[Any]]]) -> list[Migration]:
    """Apply the migrations not yet recorded; return those applied.

    ``execute(sql)`` runs one statement in the target database and returns its rows (empty for DDL).
    """
    execute(MIGRATIONS_TABLE)
    applied = {int(row[0]) for row in execute("SELECT DISTINCT version FROM sysweave_migrations")}
    done = []
    for mig in load_migrations():
        if mig.version in applied:
            continue
        execute(mig.sql)
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
    parts = [int(p) for p in re.findall(r"\d+", server_version)[:2]] + [0, 0]
    return (parts[0], parts[1]) >= (19, 6)


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
