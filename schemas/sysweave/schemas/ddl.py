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
