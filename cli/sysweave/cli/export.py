"""``sysweave export --format perfetto|otlp TRACE``: a stored trace (by id or label) as Perfetto JSON or sent
over OTLP, from the embedded store (default) or a ClickHouse server (``--clickhouse URL``)."""

from __future__ import annotations

import argparse
import json
import os
import sys

from sysweave.cli.query import add_store_arguments, store_target
from sysweave.validator.store import open_store
from sysweave.validator.store.base import StoreError

__all__ = ["add_arguments", "run"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("trace_id", metavar="TRACE", help="a trace id or label (sysweave query --name traces lists both)")
    p.add_argument("--format", choices=("perfetto", "otlp"), default="perfetto")
    p.add_argument("-o", dest="output", help="output file for perfetto (default: TRACE_ID.perfetto.json)")
    p.add_argument("--otlp-endpoint", default=os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "127.0.0.1:4317"))
    p.add_argument("--otlp-protocol", choices=("grpc", "http/protobuf"), default="grpc")
    p.add_argument("--trace-parent", default=os.environ.get("TRACEPARENT"), help="W3C traceparent to attach the trace under")
    add_store_arguments(p)


def run(args: argparse.Namespace) -> int:
    try:
        store = open_store(store_target(args))
        try:
            trace = store.load_trace(args.trace_id)
        finally:
            store.close()
    except (StoreError, ValueError) as exc:
        print(f"sysweave: export: {exc}", file=sys.stderr)
        return 1
    if args.format == "perfetto":
        from sysweave.validator.export.perfetto import to_chrome_trace

        out = args.output or f"{trace.trace_id.hex()}.perfetto.json"
        with open(out, "w") as f:
            json.dump(to_chrome_trace(trace), f)
        print(f"wrote {out}: open it in https://ui.perfetto.dev", file=sys.stderr)
        return 0
    from sysweave.validator.export.otlp import ExportError, export, make_exporter

    try:
        n = export(trace, make_exporter(args.otlp_endpoint, args.otlp_protocol), args.trace_parent)
    except (ExportError, ValueError) as exc:
        print(f"sysweave: export: {exc}", file=sys.stderr)
        return 1
    print(f"sent {n} spans to {args.otlp_endpoint} ({args.otlp_protocol})", file=sys.stderr)
    return 0
