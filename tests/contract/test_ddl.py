"""The same DDL files migrate the embedded store (chdb) and Debian's ClickHouse 18.16 server, idempotently."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from sysweave.schemas import ddl
from sysweave.schemas.rows import TABLES, described

Execute = Callable[[str], list[list[str]]]


@pytest.fixture
def chdb_execute(tmp_path: Path) -> Iterator[Execute]:
    """A chdb session on a directory, as ``execute(sql) -> rows``. chdb runs one engine per process, so the
    stores' in-memory session (left by any earlier in-process store test) is ended first, as ``upgrade`` does,
    and this one is closed after the test, pass or fail."""
    from chdb import session

    from sysweave.validator.store.chdb_session import close_session

    close_session()
    s = session.Session(str(tmp_path / "db"))
    try:
        yield lambda sql: [line.split("\t") for line in s.query(sql, "TabSeparated").bytes().decode().splitlines()]
    finally:
        s.close()


def test_one_statement_per_file_and_versions_are_ordered() -> None:
    migrations = ddl.load_migrations()
    versions = [m.version for m in migrations]
    assert versions[0] == 1 and versions == sorted(set(versions))  # numbers may leave gaps, never repeat
    for m in migrations:
        assert m.sql.count(";") == 0 and m.name in m.sql


def test_migrate_chdb_twice(chdb_execute: Execute) -> None:
    execute = chdb_execute
    execute("CREATE DATABASE IF NOT EXISTS t")
    execute("USE t")
    applied = ddl.migrate(execute)
    assert len(applied) == len(ddl.load_migrations())
    assert ddl.migrate(execute) == []
    tables = {r[0] for r in execute("SHOW TABLES")}
    assert {"syscall_spans", "traces", "validation_results", "syscall_latency_daily"} <= tables


def _described(execute) -> dict[str, list[tuple[str, str]]]:  # type: ignore[no-untyped-def]
    return {t: [(str(r[0]), ddl.logical_type(str(r[1]))) for r in execute(f"DESCRIBE TABLE {t}")] for t in TABLES}


def _expected() -> dict[str, list[tuple[str, str]]]:
    return {t: [(c.name, c.type) for c in described(t)] for t in TABLES}


def test_column_map_matches_the_ddl_on_chdb(chdb_execute: Execute) -> None:
    """schemas/rows.py's TABLES is the one column map: it must say what the migrated tables hold, column by column."""
    ddl.migrate(chdb_execute)
    assert _described(chdb_execute) == _expected()


@pytest.mark.clickhouse
def test_column_map_matches_the_ddl_on_the_server(clickhouse_hostport: tuple[str, int]) -> None:
    from clickhouse_driver import Client

    host, port = clickhouse_hostport
    db = f"t_{uuid.uuid4().hex[:8]}"
    admin = Client(host, port=port)
    admin.execute(f"CREATE DATABASE {db}")
    try:
        client = Client(host, port=port, database=db)
        ddl.migrate(client.execute)
        assert _described(client.execute) == _expected()
    finally:
        admin.execute(f"DROP DATABASE {db}")


@pytest.mark.clickhouse
def test_migrate_clickhouse_server_twice(clickhouse_hostport: tuple[str, int]) -> None:
    from clickhouse_driver import Client

    host, port = clickhouse_hostport
    db = f"t_{uuid.uuid4().hex[:8]}"
    admin = Client(host, port=port)
    admin.execute(f"CREATE DATABASE {db}")
    try:
        client = Client(host, port=port, database=db)
        assert len(ddl.migrate(client.execute)) == len(ddl.load_migrations())
        assert ddl.migrate(client.execute) == []
        assert client.execute("SELECT count() FROM sysweave_migrations")[0][0] == len(ddl.load_migrations())
    finally:
        admin.execute(f"DROP DATABASE {db}")


def test_retention_by_capability() -> None:
    assert not ddl.supports_ttl("18.16.1") and ddl.supports_ttl("19.6.2") and ddl.supports_ttl("25.8.1.1")
    assert all("MODIFY TTL" in s for s in ddl.ttl_statements(30))
    now = 1_795_881_600.0  # 2026-11-28
    stmts = ddl.prune_statements([("syscall_spans", "202607"), ("syscall_spans", "202608"), ("traces", "202001")], 90, now)
    assert stmts == ["ALTER TABLE syscall_spans DROP PARTITION 202607"]


def test_ttl_applies_on_chdb(chdb_execute: Execute) -> None:
    ddl.migrate(chdb_execute)
    for stmt in ddl.ttl_statements(7):
        chdb_execute(stmt)
    assert "TTL" in chdb_execute("SHOW CREATE TABLE syscall_spans")[0][0]


def test_capabilities_choose_the_variant() -> None:
    assert ddl.capabilities("18.16.1") == frozenset()
    assert ddl.capabilities("20.3.19.4") == {"codecs"}
    assert ddl.capabilities("26.9.2.1") == {"codecs", "codecs22"}
    (mig,) = [m for m in ddl.load_migrations() if m.version == 40]
    assert "CODEC" not in mig.statement(ddl.capabilities("18.16.1"))
    assert "CODEC" in mig.statement(ddl.capabilities("21.8")) and "min_compress_block_size" not in mig.statement(
        ddl.capabilities("21.8"))
    assert "min_compress_block_size" in mig.statement(ddl.capabilities("26.9"))
    assert ddl.logical_type("LowCardinality(String)") == "String" and ddl.logical_type("Array(String)") == "Array(String)"


@pytest.mark.parametrize("version", ["18.16.1", "20.3.19.4", "26.9.2.1"])
def test_every_variant_matches_the_column_map_on_chdb(chdb_execute: Execute, version: str) -> None:
    """chdb runs each variant (as if it were that server): the columns are the map's, codecs aside."""
    ddl.migrate(chdb_execute, server_version=version)
    assert _described(chdb_execute) == _expected()
    codecs = chdb_execute("SELECT count() FROM system.columns WHERE database = currentDatabase() "
                          "AND table = 'syscall_spans' AND compression_codec != ''")[0][0]
    assert (int(codecs) > 0) == (version != "18.16.1")
