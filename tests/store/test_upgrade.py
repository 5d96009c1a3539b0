"""A store made by the previous schema (migrations before 0040: syscall_spans version 1, every column stored)
upgrades in place: its spans survive the swap to version 2 exactly, trace_index is refilled, and the store
takes new traces. On the server by migration; an embedded store of the earlier layout (a chdb database
directory) is refused with the command that converts it, and ``store upgrade`` converts it into parts."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from sysweave.schemas import ddl
from sysweave.schemas.columns import _wire_column
from sysweave.schemas.events import CausalStamp, EventHeader, SyscallSpan, UnifiedTrace, make_event_id
from sysweave.schemas.rows import TABLES, trace_rows
from sysweave.validator.store import native, open_store
from sysweave.validator.store.base import StoreUnavailable, TraceStore, quote
from sysweave.validator.store.server import ServerStore
from sysweave.validator.store.upgrade import upgrade

from .conftest import STORES, server_url
from .traces import canonical, every_event_trace

FIRST_NEW = 40


def _old_store(kind: str, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
               ) -> Iterator[tuple[TraceStore, Callable[[], TraceStore]]]:
    """A store migrated only up to version 1 of syscall_spans, and how to reopen it (which migrates)."""
    db = f"t_old_{uuid.uuid4().hex[:10]}"
    url = server_url(request.getfixturevalue("clickhouse_hostport"), db)
    from clickhouse_driver import Client

    host, port = request.getfixturevalue("clickhouse_hostport")
    Client(host, port=port).execute(f"CREATE DATABASE {db}")
    store = open_store(url, migrate=False)
    yield store, lambda: open_store(url)
    store.execute(f"DROP DATABASE IF EXISTS {db}")


@pytest.fixture(params=[p for p in STORES if p != "embedded"])
def old_store(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
              ) -> Iterator[tuple[TraceStore, Callable[[], TraceStore]]]:
    yield from _old_store(request.param, request, tmp_path_factory)


def test_version_1_store_upgrades(old_store: tuple[TraceStore, Callable[[], TraceStore]]) -> None:
    store, reopen = old_store
    _apply_version_1(store.execute)
    tr = _old_trace()
    p = next(iter(tr.processes.values()))
    big = 2**64 - 1
    p.events.append(SyscallSpan(EventHeader(make_event_id(0, 2**64 - 1), p.host_id, p.pid, p.pid, 10, big, 0,
                                            CausalStamp(0, 0)), 1, "write", 2**63 - 1, {"b": b"\xfe"}, None, 0, 0))
    tables = trace_rows(tr, "old")
    cols = TABLES["syscall_spans"]  # version 1 stored every one of them, in this order
    span_rows = tables.pop("syscall_spans")
    wire = [_wire_column(c.type, [r.get(c.name) for r in span_rows]) for c in cols]
    sql = f"INSERT INTO syscall_spans ({', '.join(c.name for c in cols)}) VALUES"
    assert isinstance(store, ServerStore)  # the driver sends VALUES as a data block
    store._client.execute(sql, wire, columnar=True, settings={"strings_as_bytes": True})
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


def _apply_version_1(execute: Callable[[str], object]) -> None:
    """Create the layout of the store before FIRST_NEW, with its migrations recorded as applied."""
    execute(ddl.MIGRATIONS_TABLE)
    for mig in ddl.load_migrations():
        if mig.version < FIRST_NEW:
            execute(mig.sql)
            execute(f"INSERT INTO sysweave_migrations (version, name, applied_wall_ns) "
                    f"SELECT {mig.version}, '{mig.name}', {time.time_ns()}")


def _old_trace() -> UnifiedTrace:
    tr = every_event_trace()
    p = next(iter(tr.processes.values()))
    big = 2**64 - 1
    p.events.append(SyscallSpan(EventHeader(make_event_id(2**64 - 1, 0), p.host_id, p.pid, 7, big, 5, big,
                                            CausalStamp(big, 1)), 0, "read", -(2**63), {}, b"\x00\xff", 2, 255))
    return tr


def test_chdb_layout_store_converts_to_parts(tmp_path: Path) -> None:
    """A chdb database of the earlier layout (version-1 spans): refused with what to do, then converted by
    ``upgrade``: every trace reads back exactly, the named views answer, new traces store, no chdb file is left.

    chdb runs one embedded server per process: once an earlier test in this process has started the reader's
    in-memory one, a store directory cannot be opened beside it (as ``sysweave store upgrade`` always runs in
    a process of its own). So the check runs in a fresh interpreter, whatever ran before it."""
    if os.environ.get("SYSWEAVE_UPGRADE_CHILD") != "1":
        proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", "-p", "no:cacheprovider",
                               f"{__file__}::test_chdb_layout_store_converts_to_parts"],
                              env={**os.environ, "SYSWEAVE_UPGRADE_CHILD": "1"}, capture_output=True, text=True,
                              timeout=240)
        assert proc.returncode == 0 and "1 passed" in proc.stdout, proc.stdout[-4000:] + proc.stderr[-2000:]
        return
    from chdb import session

    path = tmp_path / "old"
    s = session.Session(str(path))
    try:
        s.query("CREATE DATABASE IF NOT EXISTS sysweave")
        s.query("USE sysweave")
        _apply_version_1(s.query)
        tr = _old_trace()
        for table, rows in trace_rows(tr, "old").items():  # version 1 stores every column of the map
            cols = [(c, _wire_column(c.type, [r.get(c.name) for r in rows])) for c in TABLES[table]]
            block = tmp_path / f"{table}.native"
            block.write_bytes(native.encode_block(cols))
            s.query(f"INSERT INTO {table} ({', '.join(c.name for c, _ in cols)}) "
                    f"SELECT * FROM file('{block}', Native)")
    finally:
        s.close()

    with pytest.raises(StoreUnavailable, match="sysweave store upgrade"):
        open_store(path)
    result = upgrade(path)
    assert result.traces == 1 and result.rows > 0
    assert not [p for p in os.listdir(path) if p not in ("parts", "tmp", "FORMAT")]
    store = open_store(path)
    try:
        assert canonical(store.load_trace("old")) == canonical(tr)
        n = store.execute(f"SELECT countMerge(spans) FROM trace_index WHERE trace_id = {quote(tr.trace_id.hex())}")
        assert n[0][0] == sum(len([e for e in p.events if isinstance(e, SyscallSpan)]) for p in tr.processes.values())
        new = every_event_trace()
        store.store_trace(new, label="new")
        assert canonical(store.load_trace("new")) == canonical(new)
    finally:
        store.close()
