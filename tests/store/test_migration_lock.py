"""Several processes opening one fresh server database at once (validator replicas, ``sysweave query`` beside the
service) migrate it once, one at a time: the schema ends whole, each migration recorded once, no lock left behind.
Found by CI: the validator service died with "Cannot add column side: column with this name already exists"
because the test's ``sysweave query`` loop migrated the same new database at the same moment."""

from __future__ import annotations

import concurrent.futures
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator

import pytest

from sysweave.schemas import ddl
from sysweave.validator.store.migration_lock import LOCK_TABLE, LockTiming, MigrationLocked
from sysweave.validator.store.server import ServerStore

from .conftest import server_url

pytestmark = pytest.mark.clickhouse


@pytest.fixture
def fresh_url(clickhouse_hostport: tuple[str, int]) -> Iterator[str]:
    db = f"t_lock_{uuid.uuid4().hex[:10]}"
    yield server_url(clickhouse_hostport, db)
    from clickhouse_driver import Client

    Client(*clickhouse_hostport).execute(f"DROP DATABASE IF EXISTS {db}")


def _migrate(url: str, timing: LockTiming | None = None) -> list[ddl.Migration]:
    store = ServerStore(url)
    if timing:
        store.lock_timing = timing
    try:
        return store.migrate()
    finally:
        store.close()


def _execute(url: str, sql: str) -> list[tuple[object, ...]]:
    store = ServerStore(url)
    try:
        return store.execute(sql)
    finally:
        store.close()


def _raw(url: str, clickhouse_hostport: tuple[str, int], *statements: str) -> None:
    from clickhouse_driver import Client

    admin = Client(*clickhouse_hostport)
    db = url.rsplit("/", 1)[1]
    admin.execute(f"CREATE DATABASE IF NOT EXISTS {db}")
    client = Client(*clickhouse_hostport, database=db)
    for sql in statements:
        client.execute(sql)


def _lock_exists(url: str, clickhouse_hostport: tuple[str, int]) -> bool:
    from clickhouse_driver import Client

    db = url.rsplit("/", 1)[1]
    return bool(Client(*clickhouse_hostport).execute(f"EXISTS TABLE {db}.{LOCK_TABLE}")[0][0])


def test_concurrent_migrators_apply_each_migration_once(fresh_url: str, clickhouse_hostport: tuple[str, int]) -> None:
    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        applied = list(pool.map(lambda _i: len(_migrate(fresh_url)), range(6)))
    every = len(ddl.load_migrations())
    assert sorted(applied) == [0] * 5 + [every]  # one migrator did it all; the others found nothing pending
    counts = _execute(fresh_url, "SELECT version, count() FROM sysweave_migrations GROUP BY version")
    assert len(counts) == every and {n for _v, n in counts} == {1}
    assert not _lock_exists(fresh_url, clickhouse_hostport)
    names = {r[0] for r in _execute(fresh_url, "SHOW TABLES")}
    assert {"traces", "syscall_spans", "gpu_kernels", "trace_index"} <= names


def _lock(holder: str, since_wall_ns: int) -> tuple[str, str]:
    return (f"CREATE TABLE {LOCK_TABLE} (holder String, since_wall_ns UInt64) ENGINE = TinyLog",
            f"INSERT INTO {LOCK_TABLE} (holder, since_wall_ns) SELECT '{holder}', {since_wall_ns}")


def test_a_lock_left_by_a_dead_process_is_broken(fresh_url: str, clickhouse_hostport: tuple[str, int]) -> None:
    gone = subprocess.Popen(["true"])
    gone.wait()
    _raw(fresh_url, clickhouse_hostport, *_lock(f"{socket.gethostname()}:{gone.pid}/dead", time.time_ns()))
    t0 = time.monotonic()
    assert len(_migrate(fresh_url)) == len(ddl.load_migrations())
    assert time.monotonic() - t0 < 30 and not _lock_exists(fresh_url, clickhouse_hostport)


def test_a_lock_never_filled_in_is_broken_after_its_grace(fresh_url: str, clickhouse_hostport: tuple[str, int]) -> None:
    _raw(fresh_url, clickhouse_hostport, _lock("", 0)[0])  # the holder died between its CREATE and its INSERT
    assert len(_migrate(fresh_url, LockTiming(empty_s=0.5, wait_s=20))) == len(ddl.load_migrations())


def test_a_live_holder_is_waited_for_then_named(fresh_url: str, clickhouse_hostport: tuple[str, int]) -> None:
    holder = f"{socket.gethostname()}:1/live"  # pid 1 exists: a live migrator on this host
    _raw(fresh_url, clickhouse_hostport, *_lock(holder, time.time_ns()))
    t0 = time.monotonic()
    with pytest.raises(MigrationLocked) as err:
        _migrate(fresh_url, LockTiming(wait_s=1.0))
    assert 1.0 <= time.monotonic() - t0 < 10
    assert holder in str(err.value) and f"DROP TABLE {LOCK_TABLE}" in str(err.value)
    assert _lock_exists(fresh_url, clickhouse_hostport)  # someone else's lock is never dropped by a waiter


def test_an_up_to_date_store_opens_without_the_lock(fresh_url: str, clickhouse_hostport: tuple[str, int]) -> None:
    _migrate(fresh_url)
    _raw(fresh_url, clickhouse_hostport, *_lock(f"{socket.gethostname()}:1/live", time.time_ns()))
    assert _migrate(fresh_url, LockTiming(wait_s=1.0)) == []  # a reader beside a long migration is not blocked


def test_a_retried_acquire_finds_its_own_lock(fresh_url: str, clickhouse_hostport: tuple[str, int]) -> None:
    """The store retries acquire after a network error; if the lock was made before the error, it is this
    caller's, not someone's to wait 30 minutes for."""
    from sysweave.validator.store.migration_lock import acquire, release

    store = ServerStore(fresh_url)
    try:
        store.migrate()
        execute = store.execute
        acquire(execute, "me:1/x", LockTiming(wait_s=1.0), "db")
        t0 = time.monotonic()
        acquire(execute, "me:1/x", LockTiming(wait_s=1.0), "db")  # the retry: returns at once
        assert time.monotonic() - t0 < 1.0
        release(execute, "me:1/x")
        assert not _lock_exists(fresh_url, clickhouse_hostport)
    finally:
        store.close()
