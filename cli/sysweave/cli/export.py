"""``sysweave export --format perfetto|otlp TRACE_ID``: a stored trace as Perfetto JSON or sent over OTLP."""

from __future__ import annotations

import argparse
import json
import os
import sys

from sysweave.validator.store.base import StoreError, TraceNotFound
from sysweave.validator.store.embedded import EmbeddedStore, default_store_path
from sysweave.validator.store.reader import load_trace


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("trace_id", help="a trace id (sysweave query --name traces)")
    p.add_argument("--format", choices=("perfetto", "otlp"), default="perfetto")
    p.add_argument("-o", dest="output", help="output file for perfetto (default: TRACE_ID.perfetto.json)")
    p.add_argument("--otlp-endpoint", default=os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "127.0.0.1:4317"))
    p.add_argument("--otlp-protocol", choices=("grpc", "http/protobuf"), default="grpc")
    p.add_argument("--trace-parent", default=os.environ.get("TRACEPARENT"), help="W3C traceparent to attach the trace under")
    p.add_argument("--store", metavar="PATH")


def run(args: argparse.Namespace) -> int:
    try:
        store = EmbeddedStore(args.store or default_store_path())
        trace = load_trace(store.execute, args.trace_id.lower())
        store.close()
    except (StoreError, TraceNotFound, ValueError) as exc:
        print(f"sysweave: export: {exc}", file=sys.stderr)
        return 1
    if args.format == "perfetto":
        from sysweave.validator.export.perfetto import to_chrome_trace

        out = args.output or f"{args.trace_id}.perfetto.json"
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
