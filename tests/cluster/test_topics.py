"""The product creates its own topics: `sysweave topics create` (idempotent, specs from TOPIC_SPECS) and
`sysweave validator migrate --kafka` (the chart's migrate Job), on the real broker."""

from __future__ import annotations

import os
import subprocess
import uuid

import pytest

from sysweave.cli.topics import RetryPolicy, TopicsUnavailable, create_topics

from .agent_helpers import SYSWEAVE, new_suffix

pytestmark = pytest.mark.kafka


def sysweave(suffix: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*SYSWEAVE, *args], env={**os.environ, "SYSWEAVE_TOPIC_SUFFIX": suffix},
                          capture_output=True, text=True, timeout=180)


def specs(suffix: str) -> list[tuple[str, int | None, dict[str, str]]]:
    out = sysweave(suffix, "topics", "list")
    assert out.returncode == 0, out.stderr
    rows = []
    for line in out.stdout.splitlines():
        name, parts, *cfg = line.split("\t")
        n = parts.removeprefix("partitions=")
        rows.append((name, None if n == "--partitions" else int(n),
                     dict(kv.split("=", 1) for kv in " ".join(cfg).split())))
    return rows


def describe(bootstrap: str, names: list[str]) -> tuple[dict[str, int], dict[str, dict[str, str]]]:
    from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        parts = {t["name"]: len(t["partitions"]) for t in admin.describe_topics(names)}
        resp = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, n) for n in names])
        configs = {name: {k: v["value"] for k, v in entries.items()} for name, entries in resp["topic"].items()}
        return parts, configs
    finally:
        admin.close()


def test_topics_create_makes_every_topic_with_its_spec(kafka_bootstrap: str) -> None:
    suffix = new_suffix()
    rows = specs(suffix)
    assert len(rows) >= 5 and all(name.endswith(suffix) for name, _, _ in rows)
    first = sysweave(suffix, "topics", "create", "--kafka", kafka_bootstrap, "--partitions", "3", "--replication", "1")
    assert first.returncode == 0, first.stderr
    assert first.stdout.count(": created") == len(rows), first.stdout
    parts, configs = describe(kafka_bootstrap, [name for name, _, _ in rows])
    for name, n, cfg in rows:
        assert parts[name] == (n or 3), name
        for key, value in cfg.items():
            assert configs[name][key] == value, (name, key)
    again = sysweave(suffix, "topics", "create", "--kafka", kafka_bootstrap, "--partitions", "5")
    assert again.returncode == 0 and again.stdout.count(": exists") == len(rows), again.stdout
    assert "asked 5: partitions are never changed here" in again.stdout  # reported, not silently altered
    assert describe(kafka_bootstrap, [rows[0][0]])[0][rows[0][0]] == 3


@pytest.mark.clickhouse
def test_validator_migrate_also_creates_the_topics(kafka_bootstrap: str, clickhouse_hostport: tuple[str, int]) -> None:
    from clickhouse_driver import Client

    host, port = clickhouse_hostport
    suffix, db = new_suffix(), f"mig_{uuid.uuid4().hex[:8]}"
    try:
        out = sysweave(suffix, "validator", "migrate", "--clickhouse", f"clickhouse://{host}:{port}/{db}",
                       "--kafka", kafka_bootstrap, "--partitions", "2")
        assert out.returncode == 0, out.stdout + out.stderr
        names = [name for name, _, _ in specs(suffix)]
        assert out.stdout.count(": created") == len(names), out.stdout
        parts, _ = describe(kafka_bootstrap, names)
        assert set(parts) == set(names)
    finally:
        Client(host=host, port=port).execute(f"DROP DATABASE IF EXISTS {db}")


def test_unreachable_broker_fails_with_what_to_check() -> None:
    with pytest.raises(TopicsUnavailable, match=r"Kafka at 127\.0\.0\.1:1 is not reachable after 2 attempts.*check --kafka"):
        create_topics("127.0.0.1:1", 2, 1, RetryPolicy(attempts=2, attempt_timeout_s=1.0, first_delay_s=0.1,
                                                        max_delay_s=0.1))
    with pytest.raises(ValueError, match="at least 1"):
        create_topics("127.0.0.1:1", 0, 1)
