"""``sysweave query`` and ``sysweave export`` against both stores, as a user runs them."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from sysweave.validator.store import open_store

from .conftest import server_url
from .traces import every_event_trace

_BIN = Path(sys.executable).parent / "sysweave"
SYSWEAVE = [str(_BIN)] if _BIN.exists() else [sys.executable, "-m", "sysweave.cli.main"]


def sysweave(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*SYSWEAVE, *args], capture_output=True, text=True, timeout=120, cwd=cwd)


@pytest.fixture(params=["embedded", pytest.param("server", marks=pytest.mark.clickhouse)])
def where(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[list[str], list[str]]]:
    """(store options for the CLI, ids of two traces stored under 'twice' and one under 'once')."""
    if request.param == "embedded":
        target, opts = str(tmp_path / "store"), ["--store", str(tmp_path / "store")]
    else:
        url = server_url(request.getfixturevalue("clickhouse_hostport"), f"t_cli_{uuid.uuid4().hex[:10]}")
        target, opts = url, ["--clickhouse", url]
    store = open_store(target)
    traces = [every_event_trace() for _ in range(3)]
    for tr, label in zip(traces, ("twice", "twice", "once")):
        store.store_trace(tr, label=label)
    store.close()  # the CLI opens it in its own process (chdb: one process per directory)
    yield opts, [t.trace_id.hex() for t in traces]
    if request.param == "server":
        store = open_store(target)
        store.execute(f"DROP DATABASE IF EXISTS {target.rsplit('/', 1)[1]}")
        store.close()


def test_named_traces_query_shows_labels(where: tuple[list[str], list[str]]) -> None:
    opts, ids = where
    r = sysweave("query", *opts, "--name", "traces", "--format", "json")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)["data"]
    assert {(d["trace_id"], d["label"]) for d in data} == {(ids[0], "twice"), (ids[1], "twice"), (ids[2], "once")}
    r = sysweave("query", *opts, "SELECT name, count() AS n FROM syscall_spans GROUP BY name ORDER BY name", "--format", "csv")
    assert r.returncode == 0 and r.stdout.splitlines()[0] == '"name","n"' and '"openat",3' in r.stdout, r.stdout + r.stderr
    r = sysweave("query", *opts, "SELECT count() FROM hosts", "--format", "tsv")
    assert r.returncode == 0 and r.stdout.strip().endswith("6"), r.stdout + r.stderr


def test_bad_sql_is_a_clear_error(where: tuple[list[str], list[str]]) -> None:
    opts, _ = where
    for sql in ("SELEC 1", "SELECT no_such_column FROM traces"):
        r = sysweave("query", *opts, sql)
        assert r.returncode == 1
        assert "query failed" in r.stderr and "SHOW TABLES" in r.stderr and "Traceback" not in r.stderr, r.stderr
        assert len(r.stderr) < 600, r.stderr


def test_export_by_id_or_label(where: tuple[list[str], list[str]], tmp_path: Path) -> None:
    opts, ids = where
    r = sysweave("export", *opts, "once", "-o", str(tmp_path / "once.json"))
    assert r.returncode == 0, r.stderr
    assert json.loads((tmp_path / "once.json").read_text())
    r = sysweave("export", *opts, ids[0], cwd=tmp_path)
    assert r.returncode == 0 and (tmp_path / f"{ids[0]}.perfetto.json").exists(), r.stderr
    r = sysweave("export", *opts, "twice")
    assert r.returncode == 1 and ids[0] in r.stderr and ids[1] in r.stderr and "names 2 traces" in r.stderr, r.stderr
    r = sysweave("export", *opts, "no-such-trace")
    assert r.returncode == 1 and "no trace with id or label" in r.stderr, r.stderr


def test_unreachable_server_says_what_to_do() -> None:
    r = sysweave("query", "--clickhouse", "clickhouse://127.0.0.1:1/sysweave", "SELECT 1")
    assert r.returncode == 1 and "unreachable" in r.stderr and "make services-up" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr
