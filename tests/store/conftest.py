"""Both stores as fixtures: ``embedded`` (chdb in a temporary directory) and ``server`` (a fresh database on
the local ClickHouse 18.16 server, dropped afterwards; tests using it are marked ``clickhouse``)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from sysweave.validator.store import open_store
from sysweave.validator.store.base import TraceStore

STORES = ["embedded", pytest.param("server", marks=pytest.mark.clickhouse)]


def server_url(hostport: tuple[str, int], db: str) -> str:
    return f"clickhouse://{hostport[0]}:{hostport[1]}/{db}"


def _open(kind: str, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TraceStore]:
    if kind == "embedded":
        store = open_store(tmp_path_factory.mktemp("store") / "db")
        yield store
        store.close()
        return
    hostport = request.getfixturevalue("clickhouse_hostport")
    db = f"t_store_{uuid.uuid4().hex[:10]}"
    store = open_store(server_url(hostport, db))
    yield store
    store.execute(f"DROP DATABASE IF EXISTS {db}")
    store.close()


@pytest.fixture(params=STORES)
def store(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TraceStore]:
    yield from _open(request.param, request, tmp_path_factory)


@pytest.fixture(params=STORES, scope="module")
def module_store(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TraceStore]:
    yield from _open(request.param, request, tmp_path_factory)
