"""The embedded store's parts: a write imports no chdb/pyarrow/numpy and leaves either a whole part or nothing;
``sysweave store info|compact|prune`` as a user runs them, with the same answers before and after a merge."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sysweave.schemas.events import UnifiedTrace
from sysweave.validator.store import open_store
from sysweave.validator.store.base import StoreError
from sysweave.validator.store.compact import prune
from sysweave.validator.store.embedded import EmbeddedStore
from sysweave.validator.store.named_queries import NAMED_QUERIES

from .test_cli import sysweave
from .traces import T0, canonical, every_event_trace


def test_a_write_starts_no_reader_and_reads_nothing(tmp_path: Path) -> None:
    code = ("import sys\nsys.path.insert(0, sys.argv[2])\nfrom tests.store.traces import every_event_trace\n"
            "from sysweave.validator.store import open_store\n"
            "s = open_store(sys.argv[1]); s.store_trace(every_event_trace(), label='x')\n"
            "s.insert('validation_results', [{'validation_id': 'v', 'verdict': 'equivalent'}]); s.close()\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('chdb', 'pyarrow', 'numpy')))")
    root = str(Path(__file__).resolve().parents[2])
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "s"), root], capture_output=True, text=True,
                         check=True, env={**os.environ, "SYSWEAVE_COMPACT_AT": "0"})
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
    parts = os.listdir(tmp_path / "s" / "parts")
    assert len(parts) == 2 and not os.listdir(tmp_path / "s" / "tmp")


def test_a_failed_write_leaves_no_part(tmp_path: Path) -> None:
    store = EmbeddedStore(tmp_path / "s")
    tr = every_event_trace()
    next(iter(tr.processes.values())).events.append("not an event")  # type: ignore[arg-type]
    with pytest.raises((KeyError, StoreError, TypeError)):
        store.store_trace(tr)
    assert not os.listdir(tmp_path / "s" / "parts") and not os.listdir(tmp_path / "s" / "tmp")


def test_storing_a_trace_again_replaces_it(tmp_path: Path) -> None:
    store = open_store(tmp_path / "s")
    tr = every_event_trace()
    store.store_trace(tr, label="first")
    store.store_trace(tr, label="second")
    assert store.execute("SELECT label FROM traces") == [("second",)]
    assert canonical(store.load_trace("second")) == canonical(tr)
    store.close()


def test_store_info_compact_prune(tmp_path: Path) -> None:
    where = ["--store", str(tmp_path / "s")]
    store = open_store(tmp_path / "s")
    traces = [every_event_trace() for _ in range(4)]
    for i, tr in enumerate(traces):
        store.store_trace(tr, label=f"t{i}")
    store.insert("validation_results", [{"validation_id": "v1", "verdict": "equivalent", "report": "{}"}])
    before = {name: sorted(map(repr, store.execute(sql))) for name, (_d, sql) in NAMED_QUERIES.items()}
    store.close()

    info = json.loads(sysweave("store", "info", "--json", *where).stdout)
    assert (info["traces"], info["validations"], info["parts"], info["merged_parts"]) == (4, 1, 5, 0)
    r = sysweave("store", "compact", *where)
    assert r.returncode == 0 and "merged 5 parts" in r.stderr, r.stderr
    info = json.loads(sysweave("store", "info", "--json", *where).stdout)
    assert (info["traces"], info["validations"], info["parts"], info["merged_parts"]) == (4, 1, 1, 1)

    store = open_store(tmp_path / "s")
    assert {name: sorted(map(repr, store.execute(sql))) for name, (_d, sql) in NAMED_QUERIES.items()} == before
    assert canonical(store.load_trace("t2")) == canonical(traces[2])
    store.close()

    r = sysweave("store", "prune", "--keep", "1", *where)
    assert r.returncode == 0 and "removed 3 traces" in r.stderr, r.stderr
    r = sysweave("query", *where, "SELECT count() FROM traces", "--format", "tsv")
    assert r.stdout.strip().endswith("1"), r.stdout + r.stderr
    r = sysweave("store", "prune", *where)
    assert r.returncode == 2 and "--older-than DAYS" in r.stderr


def test_store_path_in_help_and_missing_store(tmp_path: Path) -> None:
    env_path = str(tmp_path / "elsewhere")
    for cmd in ("trace", "query"):
        out = subprocess.run([*sysweave_cmd(), cmd, "--help"], capture_output=True, text=True,
                             env={**os.environ, "SYSWEAVE_STORE": env_path, "COLUMNS": "400"})
        assert env_path in out.stdout, out.stdout
    r = sysweave("store", "info", "--store", str(tmp_path / "none"))
    assert r.returncode == 1 and "no trace store at" in r.stderr


def sysweave_cmd() -> list[str]:
    from .test_cli import SYSWEAVE

    return SYSWEAVE


def test_sql_writes_are_refused_with_what_to_do(tmp_path: Path) -> None:
    store = open_store(tmp_path / "s")
    with pytest.raises(StoreError, match=r"answers SQL reads only.*sysweave store prune"):
        store.execute("DROP TABLE traces")
    assert store.execute("SELECT count() FROM traces") == [(0,)]
    store.close()


def _recent_trace() -> UnifiedTrace:
    tr = every_event_trace()
    for p in tr.processes.values():
        p.start_wall_ns = time.time_ns()
    return tr


def test_retention_removes_old_traces_on_write_and_on_prune(tmp_path: Path) -> None:
    old = every_event_trace()  # started 2026-11-28
    store = EmbeddedStore(tmp_path / "s")
    store.store_trace(old, label="old")
    kept = EmbeddedStore(tmp_path / "s", retention_days=36_500)
    kept.store_trace(_recent_trace(), label="recent")
    assert {t.label for t in kept.list_traces()} == {"old", "recent"}
    short = EmbeddedStore(tmp_path / "s", retention_days=(time.time_ns() - T0) / 86_400e9 - 0.5)  # T0 + half a day
    short.store_trace(_recent_trace(), label="newer")
    labels = {t.label for t in short.list_traces()}
    assert "old" not in labels and {"recent", "newer"} <= labels
    removed, _freed = prune(short.layout, older_than_days=36_500, keep=1)
    assert removed == 1 and [t.label for t in short.list_traces()] == ["newer"]


def test_many_writes_start_a_background_merge(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYSWEAVE_COMPACT_AT", "3")
    store = EmbeddedStore(tmp_path / "s")
    traces = [every_event_trace() for _ in range(3)]
    for tr in traces:
        store.store_trace(tr)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not any("-merged-" in n for n in os.listdir(tmp_path / "s" / "parts")):
        time.sleep(0.5)
    assert [n for n in os.listdir(tmp_path / "s" / "parts") if "-merged-" in n], (tmp_path / "s" / "compact.log").read_text()
    while time.monotonic() < deadline and len(os.listdir(tmp_path / "s" / "parts")) > 1:
        time.sleep(0.2)  # the inputs go once the merged part is in place
    assert canonical(store.load_trace(traces[1].trace_id.hex())) == canonical(traces[1])
    store.close()
