"""A store made by the previous schema (migrations before 0040: syscall_spans version 1, every column stored)
upgrades in place: its spans survive the swap to version 2 exactly, trace_index is refilled, and the store
takes new traces."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from sysweave.schemas import ddl
from sysweave.schemas.columns import _wire_column
from sysweave.schemas.events import CausalStamp, EventHeader, SyscallSpan, make_event_id
from sysweave.schemas.rows import TABLES, trace_rows
from sysweave.validator.store import open_store
from sysweave.validator.store.base import TraceStore, quote
from sysweave.validator.store.server import ServerStore

from .conftest import STORES, server_url
from .traces import canonical, every_event_trace

FIRST_NEW = 40


def _literal(typ: str, v: Any) -> str:
    if typ.startswith("FixedString"):
        return f"unhex('{bytes(v).hex()}')"
    if typ == "String":  # every byte exact: \xHH escapes (18.16 and current ClickHouse)
        return "'" + "".join(chr(b) if 32 <= b < 127 and b not in (39, 92) else f"\\x{b:02x}" for b in bytes(v)) + "'"
    return str(int(v))


def _old_store(kind: str, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
               ) -> Iterator[tuple[TraceStore, Callable[[], TraceStore]]]:
    """A store migrated only up to version 1 of syscall_spans, and how to reopen it (which migrates)."""
    if kind == "embedded":
        path = tmp_path_factory.mktemp("old") / "db"
        store = open_store(path, migrate=False)
        yield store, lambda: open_store(path)
        return
    db = f"t_old_{uuid.uuid4().hex[:10]}"
    url = server_url(request.getfixturevalue("clickhouse_hostport"), db)
    from clickhouse_driver import Client

    host, port = request.getfixturevalue("clickhouse_hostport")
    Client(host, port=port).execute(f"CREATE DATABASE {db}")
    store = open_store(url, migrate=False)
    yield store, lambda: open_store(url)
    store.execute(f"DROP DATABASE IF EXISTS {db}")


@pytest.fixture(params=STORES)
def old_store(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
              ) -> Iterator[tuple[TraceStore, Callable[[], TraceStore]]]:
    yield from _old_store(request.param, request, tmp_path_factory)


def test_version_1_store_upgrades(old_store: tuple[TraceStore, Callable[[], TraceStore]]) -> None:
    store, reopen = old_store
    store.execute(ddl.MIGRATIONS_TABLE)
    for mig in ddl.load_migrations():
        if mig.version < FIRST_NEW:
            store.execute(mig.sql)
            store.execute(f"INSERT INTO sysweave_migrations (version, name, applied_wall_ns) "
                          f"SELECT {mig.version}, '{mig.name}', {time.time_ns()}")
    tr = every_event_trace()
    p = next(iter(tr.processes.values()))
    big = 2**64 - 1
    p.events.append(SyscallSpan(EventHeader(make_event_id(2**64 - 1, 0), p.host_id, p.pid, 7, big, 5, big,
                                            CausalStamp(big, 1)), 0, "read", -(2**63), {}, b"\x00\xff", 2, 255))
    p.events.append(SyscallSpan(EventHeader(make_event_id(0, 2**64 - 1), p.host_id, p.pid, p.pid, 10, big, 0,
                                            CausalStamp(0, 0)), 1, "write", 2**63 - 1, {"b": b"\xfe"}, None, 0, 0))
    tables = trace_rows(tr, "old")
    cols = TABLES["syscall_spans"]  # version 1 stored every one of them, in this order
    span_rows = tables.pop("syscall_spans")
    wire = [_wire_column(c.type, [r.get(c.name) for r in span_rows]) for c in cols]
    sql = f"INSERT INTO syscall_spans ({', '.join(c.name for c in cols)}) VALUES"
    if isinstance(store, ServerStore):  # the driver sends VALUES as a data block
        store._client.execute(sql, wire, columnar=True, settings={"strings_as_bytes": True})
    else:
        store.execute(sql + " " + ", ".join("(" + ", ".join(_literal(c.type, v) for c, v in zip(cols, row)) + ")"
                                            for row in zip(*wire)))
    for table, rs in tables.items():
        store.insert(table, rs)
    assert canonical(store.load_trace("old")) == canonical(tr)  # the version-1 layout reads
    store.close()

    upgraded = reopen()
    try:
        versions = {int(r[0]) for r in upgraded.execute("SELECT version FROM sysweave_migrations")}
        assert {m.version for m in ddl.load_migrations()} <= versions
        names = {r[0] for r in upgraded.execute("SHOW TABLES")}
        assert "syscall_spans_v1" not in names and "syscall_spans_v2" not in names
        assert canonical(upgraded.load_trace("old")) == canonical(tr)
        n = upgraded.execute(f"SELECT countMerge(spans) FROM trace_index WHERE trace_id = {quote(tr.trace_id.hex())}")
        assert n[0][0] == sum(len([e for e in p.events if isinstance(e, SyscallSpan)]) for p in tr.processes.values())
        new = every_event_trace()
        upgraded.store_trace(new, label="new")
        assert canonical(upgraded.load_trace("new")) == canonical(new)
        assert upgraded.migrate() == []
    finally:
        upgraded.close()
