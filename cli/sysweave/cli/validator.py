"""``sysweave validator serve|migrate``: the validator service and the ClickHouse schema."""

from __future__ import annotations

import argparse
import logging
import sys

from sysweave.cli.topics import TopicsUnavailable, create_topics
from sysweave.cli.topics import add_create_arguments as add_topic_arguments
from sysweave.validator.service import ValidatorService, apply_retention
from sysweave.validator.store.server import ClickHouseSink, SinkError

__all__ = ["add_arguments", "run"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="validator_cmd", required=True)
    s = sub.add_parser("serve", help="consume traces and validation requests into ClickHouse (+ OTLP)")
    s.add_argument("--kafka", required=True, metavar="BOOTSTRAP")
    s.add_argument("--clickhouse", required=True, metavar="URL", help="clickhouse://HOST:9000/DATABASE")
    s.add_argument("--otlp", default=None, metavar="ENDPOINT", help="HOST:4317 (gRPC) or http://HOST:4318 (HTTP)")
    m = sub.add_parser("migrate", help="apply the ClickHouse schema (versioned, idempotent)")
    m.add_argument("--clickhouse", required=True, metavar="URL")
    add_topic_arguments(m, required=False)  # with --kafka, also create the topics (sysweave topics create)
    m.add_argument("--retention-days", type=int, default=0,
                   help="keep events this many days: a table TTL where the server has TTL (>= 19.6), otherwise "
                        "old monthly partitions are dropped now (run it from cron)")


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s sysweave-validator %(message)s")
    logging.getLogger("kafka").setLevel(logging.WARNING)
    try:
        if args.validator_cmd == "migrate":
            sink = ClickHouseSink(args.clickhouse)
            applied = sink.migrate()
            print(f"applied {len(applied)} migrations" + (f": {', '.join(m.name for m in applied)}" if applied else
                                                           " (schema up to date)"))
            if args.retention_days:
                apply_retention(sink, args.retention_days)
            sink.close()
            if args.kafka:
                for line in create_topics(args.kafka, args.partitions, args.replication):
                    print(line)
            return 0
        svc = ValidatorService(args.kafka, args.clickhouse, args.otlp)
        svc.sink.migrate()
    except (SinkError, TopicsUnavailable, ValueError) as exc:
        print(f"sysweave validator: {exc}", file=sys.stderr)
        return 1
    import signal

    for sig in (signal.SIGTERM, signal.SIGHUP):  # a stop request: finish the message in hand, then close
        signal.signal(sig, lambda *_: svc.stop.set())
    try:
        svc.serve()
    except KeyboardInterrupt:
        pass
    finally:
        svc.close()
    return 0
