"""``sysweave topics create``: the product makes its own Kafka topics (also run by ``validator migrate --kafka``
and the chart's migrate Job), so no consumer waits minutes for a metadata refresh on a topic that does not exist.

    sysweave topics create --kafka BOOTSTRAP [--partitions N] [--replication R]

Idempotent: a topic that exists is left as it is and reported (with its partition count when that differs from
the one asked: raising it re-maps keys to partitions, which the operator must decide; see docs/operations.md).
Names follow ``SYSWEAVE_TOPIC_SUFFIX``; partitions, retention and the rest come from
:data:`sysweave.schemas.topics.TOPIC_SPECS`.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from typing import Any

from sysweave.schemas import topics
from sysweave.schemas.errors import CliError

__all__ = ["CONNECT_RETRY", "RetryPolicy", "TopicsUnavailable", "add_arguments", "create_topics", "run"]


class TopicsUnavailable(CliError):
    """The broker could not be reached, or refused to create a topic."""


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    attempts: int
    attempt_timeout_s: float  # per bootstrap attempt
    first_delay_s: float
    max_delay_s: float


# A migrate Job often starts beside the broker: keep trying for about two minutes before giving up.
CONNECT_RETRY = RetryPolicy(attempts=8, attempt_timeout_s=10.0, first_delay_s=1.0, max_delay_s=15.0)


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="topics_cmd", required=True)
    c = sub.add_parser("create", help="create sysweave's topics (idempotent)")
    add_create_arguments(c, required=True)
    sub.add_parser("list", help="the topics sysweave uses, with their settings")


def add_create_arguments(p: argparse.ArgumentParser, required: bool) -> None:
    """--kafka/--partitions/--replication, shared with ``validator migrate``."""
    p.add_argument("--kafka", required=required, metavar="BOOTSTRAP", help="HOST:PORT[,HOST:PORT...]")
    p.add_argument("--partitions", type=int, default=12,
                   help="partitions of the data topics (at least the number of stream workers; default 12)")
    p.add_argument("--replication", type=int, default=1, help="replication factor (3 on a production cluster)")


def _admin(bootstrap: str, policy: RetryPolicy = CONNECT_RETRY) -> Any:  # kafka.admin.KafkaAdminClient (untyped)
    from kafka.admin import KafkaAdminClient
    from kafka.errors import KafkaError

    delay = policy.first_delay_s
    for attempt in range(1, policy.attempts + 1):
        try:
            return KafkaAdminClient(bootstrap_servers=bootstrap.split(","), client_id="sysweave-topics",
                                    bootstrap_timeout_ms=int(policy.attempt_timeout_s * 1000))
        except KafkaError as exc:
            if attempt == policy.attempts:
                raise TopicsUnavailable(f"Kafka at {bootstrap} is not reachable after {attempt} attempts ({exc}); "
                                        "check --kafka and that the broker is up") from exc
            time.sleep(delay)
            delay = min(delay * 2, policy.max_delay_s)
    raise AssertionError("unreachable")


def create_topics(bootstrap: str, partitions: int, replication: int, policy: RetryPolicy = CONNECT_RETRY) -> list[str]:
    """Create every missing sysweave topic; returns one line per topic saying what happened."""
    if partitions < 1 or replication < 1:
        raise ValueError("--partitions and --replication must be at least 1")
    from kafka.admin import NewTopic
    from kafka.errors import KafkaError, TopicAlreadyExistsError

    admin = _admin(bootstrap, policy)
    try:
        ours = [spec.name for spec in topics.TOPIC_SPECS if spec.name in set(admin.list_topics())]
        existing = {t["name"]: len(t["partitions"]) for t in (admin.describe_topics(ours) if ours else [])}
        report: list[str] = []
        for spec in topics.TOPIC_SPECS:
            n = spec.partitions or partitions
            if spec.name in existing:
                have = existing[spec.name]
                note = "" if have == n else f" (asked {n}: partitions are never changed here, see docs/operations.md)"
                report.append(f"{spec.name}: exists, {have} partitions{note}")
                continue
            try:
                admin.create_topics([NewTopic(spec.name, n, replication, topic_configs=dict(spec.config))])
            except TopicAlreadyExistsError:  # created meanwhile by another migrate or by auto-creation
                report.append(f"{spec.name}: exists")
                continue
            except KafkaError as exc:
                raise TopicsUnavailable(f"creating {spec.name} ({n} partitions, replication {replication}) failed: "
                                        f"{exc}") from exc
            report.append(f"{spec.name}: created, {n} partitions, replication {replication}")
        return report
    finally:
        admin.close()


def run(args: argparse.Namespace) -> int:
    if args.topics_cmd == "list":
        for spec in topics.TOPIC_SPECS:
            cfg = " ".join(f"{k}={v}" for k, v in spec.config)
            print(f"{spec.name}\tpartitions={spec.partitions or '--partitions'}\t{cfg}")
        return 0
    try:
        for line in create_topics(args.kafka, args.partitions, args.replication):
            print(line)
    except (TopicsUnavailable, ValueError) as exc:
        print(f"sysweave topics: {exc}", file=sys.stderr)
        return 1
    return 0
