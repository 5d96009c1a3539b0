"""The Grafana dashboard in the chart: every ClickHouse query runs on the supported 18.16 server against a
freshly migrated database (macros expanded as grafana-clickhouse-datasource expands them), and every Prometheus
query names metrics the agent exports."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import uuid
from typing import Any

import pytest

from .conftest import CHART

DASHBOARD = CHART / "files" / "dashboards" / "sysweave.json"


def targets(kind: str) -> list[tuple[str, dict[str, Any]]]:
    dash = json.loads(DASHBOARD.read_text())
    return [(p["title"], t) for p in dash["panels"] for t in p["targets"] if t["datasource"]["type"] == kind]


def expand_macros(sql: str, start: int, end: int) -> str:
    """What the plugin does before sending: $__fromTime/$__toTime become toDateTime(<unix seconds>)."""
    sql = sql.replace("$__fromTime", f"toDateTime({start})").replace("$__toTime", f"toDateTime({end})")
    assert "$" not in sql, f"unexpanded macro in {sql}"
    return sql


@pytest.fixture(scope="module")
def migrated_db(clickhouse_hostport: tuple[str, int]) -> str:
    host, port = clickhouse_hostport
    db = f"dash_{uuid.uuid4().hex[:8]}"
    out = subprocess.run([sys.executable, "-m", "sysweave.cli.main", "validator", "migrate",
                          "--clickhouse", f"clickhouse://{host}:{port}/{db}"], capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stdout + out.stderr
    return db


@pytest.mark.clickhouse
def test_every_clickhouse_query_runs_on_the_server(clickhouse_hostport: tuple[str, int], migrated_db: str) -> None:
    from clickhouse_driver import Client

    host, port = clickhouse_hostport
    client = Client(host=host, port=port, database=migrated_db, send_receive_timeout=60)
    now = int(time.time())
    ns = now * 1_000_000_000
    client.execute("INSERT INTO traces (trace_id, label, start_wall_ns, end_wall_ns, processes, events, version) VALUES",
                   [("t1", "job-1", ns - 60_000_000_000, ns - 59_000_000_000, 3, 40, 1)])
    queries = targets("grafana-clickhouse-datasource")
    assert len(queries) == 6
    results = {}
    try:
        for title, target in queries:
            sql = expand_macros(target["rawSql"], now - 3600, now + 60)
            try:
                results[title] = client.execute(sql)
            except Exception as exc:  # report which panel's query the server refused
                pytest.fail(f"panel {title!r}: {exc}\n{sql}")
    finally:
        client.execute(f"DROP DATABASE IF EXISTS {migrated_db}")
        client.disconnect()
    assert len(results["Traces stored per minute"]) == 1 and results["Traces stored per minute"][0][1] == 1
    (row,) = results["Recent traces"]
    assert row[:2] == ("t1", "job-1") and row[3:5] == (3, 40) and abs(row[-1] - 1.0) < 1e-9


def test_every_prometheus_query_names_an_agent_metric() -> None:
    from sysweave.agents.daemon import AgentMetrics

    exported = set(re.findall(r'"(sysweave_agent_[a-z_]+)"', __import__("inspect").getsource(AgentMetrics)))
    used = {m for _, t in targets("prometheus") for m in re.findall(r"sysweave_[a-z_]+", t["expr"])}
    assert used and used <= exported, used - exported
    assert exported <= used | {"sysweave_agent_events_captured"}, f"metrics without a panel: {exported - used}"
