"""One migrator per ClickHouse database at a time: a lock table that only one ``CREATE TABLE`` can make.

Several processes open a fresh database at once in a real deployment (validator replicas, ``sysweave query``
beside the service, ``sysweave validator migrate`` from a Helm hook). Migrations are idempotent when run one
after another but not when interleaved: 18.16 has no ``ADD COLUMN IF NOT EXISTS``, and a copy migration run twice
doubles its rows. So :func:`acquire` and :func:`release` bracket a migration, using nothing newer than 18.16:

- ``CREATE TABLE sysweave_migration_lock`` (no ``IF NOT EXISTS``) succeeds for one caller; the others see the
  table exist and wait with jittered backoff. The winner reads what is still pending under the lock
  (``ddl.migrate``), so a waiter that gets the lock later finds nothing left to do.
- The holder writes ``holder`` (``host:pid/token``) and ``since_wall_ns`` into it, and drops it when done.
- A lock is broken (renamed away, then dropped) when its holder is a process of this host that no longer
  exists, when it is older than ``stale_s``, or when it has stayed empty for ``empty_s`` (a holder that died
  between its CREATE and its INSERT). Renaming is atomic: of two breakers only one succeeds.

Waiting longer than ``wait_s`` raises :class:`MigrationLocked` naming the holder and the statement that clears a
lock left by a crash.
"""

from __future__ import annotations

import os
import random
import socket
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sysweave.validator.store.base import SinkUnavailable

__all__ = ["LOCK_TABLE", "LockTiming", "MigrationLocked", "acquire", "release", "this_holder"]

LOCK_TABLE = "sysweave_migration_lock"
Execute = Callable[[str], Sequence[Sequence[Any]]]


class MigrationLocked(SinkUnavailable):
    """Another process held the database's migration lock for longer than this one would wait."""


@dataclass(frozen=True, slots=True)
class LockTiming:
    """Seconds: how long to wait for another migrator, when a held lock counts as abandoned, and the backoff."""

    wait_s: float = 600.0  # a copy migration of a large store takes minutes
    stale_s: float = 1800.0
    empty_s: float = 10.0
    initial_s: float = 0.05
    max_s: float = 1.0


def this_holder() -> str:
    """``host:pid/token``: the token tells threads (and store objects) of one process apart."""
    return f"{socket.gethostname()}:{os.getpid()}/{uuid.uuid4().hex[:6]}"


def _exists(execute: Execute) -> bool:
    return bool(int(execute(f"EXISTS TABLE {LOCK_TABLE}")[0][0]))


def _try_create(execute: Execute, holder: str) -> bool:
    try:
        execute(f"CREATE TABLE {LOCK_TABLE} (holder String, since_wall_ns UInt64) ENGINE = TinyLog")
    except Exception:
        if _exists(execute):  # another migrator made it first (the error's wording differs by version)
            return False
        raise
    execute(f"INSERT INTO {LOCK_TABLE} (holder, since_wall_ns) SELECT '{_quoted(holder)}', {time.time_ns()}")
    return True


def _quoted(text: str) -> str:
    return text.replace("\\", "\\\\").replace("'", "\\'")


def _current(execute: Execute) -> tuple[str, int] | None:
    """(holder, since_wall_ns) of the lock, or None while it is empty (or gone)."""
    try:
        rows = execute(f"SELECT holder, since_wall_ns FROM {LOCK_TABLE} LIMIT 1")
    except Exception:
        if _exists(execute):
            raise
        return None
    return (str(rows[0][0]), int(rows[0][1])) if rows else None


def _dead_here(holder: str) -> bool:
    """The holder is a process of this host that has exited."""
    host, _, rest = holder.partition(":")
    pid = rest.partition("/")[0]
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def _break(execute: Execute) -> None:
    """Rename the lock away, then drop it; losing the rename to another breaker is fine."""
    aside = f"{LOCK_TABLE}_stale_{uuid.uuid4().hex[:8]}"
    try:
        execute(f"RENAME TABLE {LOCK_TABLE} TO {aside}")
    except Exception:
        if _exists(execute):
            raise
        return
    execute(f"DROP TABLE IF EXISTS {aside}")


def _abandoned(current: tuple[str, int] | None, empty_since: float | None, timing: LockTiming) -> bool:
    if current is None:
        return empty_since is not None and time.monotonic() - empty_since > timing.empty_s
    holder, since_wall_ns = current
    return _dead_here(holder) or (time.time_ns() - since_wall_ns) / 1e9 > timing.stale_s


def _locked_message(current: tuple[str, int] | None, timing: LockTiming, where: str) -> str:
    if current is None:
        who = "a holder that never wrote its name"
    else:
        who = f"{current[0]} since {time.strftime('%H:%M:%S', time.gmtime(current[1] / 1e9))} UTC"
    return (f"{where}: waited {timing.wait_s:.0f} s for another process ({who}) to finish migrating the schema; "
            f"if it crashed, clear its lock with `DROP TABLE {LOCK_TABLE}` in that database and retry")


def acquire(execute: Execute, holder: str, timing: LockTiming, where: str) -> None:
    """Wait until this caller holds the lock (:class:`MigrationLocked` after ``timing.wait_s``). Called again after
    a network error (the store's retry), it finds the lock it already made and returns."""
    deadline = time.monotonic() + timing.wait_s
    delay = timing.initial_s
    empty_since: float | None = None
    while not _try_create(execute, holder):
        current = _current(execute)
        if current is not None and current[0] == holder:
            return
        empty_since = (empty_since or time.monotonic()) if current is None else None
        if _abandoned(current, empty_since, timing):
            _break(execute)
            empty_since = None
            continue
        if time.monotonic() > deadline:
            raise MigrationLocked(_locked_message(current, timing, where))
        time.sleep(delay * random.uniform(0.8, 1.2))
        delay = min(delay * 2, timing.max_s)


def release(execute: Execute, holder: str) -> None:
    """Drop the lock if this caller still holds it (it may have been broken as abandoned)."""
    current = _current(execute)
    if current is not None and current[0] == holder:
        execute(f"DROP TABLE IF EXISTS {LOCK_TABLE}")
