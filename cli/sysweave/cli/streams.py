"""``sysweave streams worker``: run a Faust stream worker (thin glue: the logic is sysweave.streams)."""

from __future__ import annotations

import logging
import os
from typing import Any

from sysweave.streams.processor import WorkerConfig
from sysweave.streams.worker import make_app

__all__ = ["add_arguments", "run"]


def add_arguments(p: Any) -> None:
    sub = p.add_subparsers(dest="streams_cmd", required=True)
    w = sub.add_parser("worker", help="run a Faust stream worker (several may run: they share partitions)")
    w.add_argument("--kafka", required=True, metavar="BOOTSTRAP")
    w.add_argument("--grace-s", type=float, default=2.0, help="wait after the last process exits before closing a trace")
    w.add_argument("--inactivity-s", type=float, default=30.0, help="close a trace after this long without events")
    w.add_argument("--target-spans-per-s", type=float, default=10_000.0, help="adaptive sampling target per host")
    w.add_argument("--control-interval-s", type=float, default=5.0, help="sampling report and decision interval")
    w.add_argument("--join-wait-s", type=float, default=10.0,
                   help="hold a closed trace this long for the other end of its TCP connections (cross-host join)")
    w.add_argument("--max-held-events", type=int, default=2_000_000,
                   help="events held in memory across open traces (~700 bytes each); beyond, the least recently "
                        "active traces close early (counted)")
    w.add_argument("--loglevel", default="warning")
    w.add_argument("--app-id", default="sysweave-streams", help="Faust app id = Kafka consumer group")


def run(args: Any) -> int:
    import faust

    logging.basicConfig(level=logging.INFO)
    cfg = WorkerConfig(f"{args.app_id}/{os.getpid()}", args.grace_s, args.inactivity_s, args.target_spans_per_s,
                       args.control_interval_s, args.join_wait_s, args.max_held_events)
    app = make_app(args.kafka, cfg, app_id=args.app_id)
    worker = faust.Worker(app, loglevel=args.loglevel, quiet=True)
    worker.execute_from_commandline()
    return 0
