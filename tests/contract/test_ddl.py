"""The same DDL files migrate the embedded store (chdb) and Debian's ClickHouse 18.16 server, idempotently."""

from __future__ import annotations

import uuid

import pytest

from sysweave.schemas import ddl


def test_one_statement_per_file_and_versions_are_ordered() -> None:
    migrations = ddl.load_migrations()
    assert [m.version for m in migrations] == list(range(1, len(migrations) + 1))
    for m in migrations:
        assert m.sql.count(";") == 0 and m.name in m.sql


def test_migrate_chdb_twice(tmp_path) -> None:
    from chdb import session

    s = session.Session(str(tmp_path / "db"))
    s.query("CREATE DATABASE IF NOT EXISTS t")

    def execute(sql: str) -> list[list[str]]:
        res = s.query(sql, "TabSeparated")
        return [line.split("\t") for line in res.bytes().decode().splitlines()]

    s.query("USE t")
    applied = ddl.migrate(execute)
    assert len(applied) == len(ddl.load_migrations())
    assert ddl.migrate(execute) == []
    tables = {r[0] for r in execute("SHOW TABLES")}
    assert {"syscall_spans", "traces", "validation_results", "syscall_latency_daily"} <= tables
    s.close()


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
