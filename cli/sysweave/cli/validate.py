"""``sysweave validate``: does the transpiled program have the same effects as the original?

    sysweave validate --original CMD --transpiled CMD [--workdir DIR --runs K --json]
    sysweave validate --original-trace ID|LABEL --transpiled-trace ID|LABEL [--clickhouse URL | --store PATH]
    sysweave validate --original-trace A --transpiled-trace B --submit --kafka BOOTSTRAP   # to validator serve

Exit status: 0 equivalent, 1 divergent, 2 could not decide (reason on stderr). The definition of
"equivalent" and how the report and its confidence are made: docs/equivalence.md.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import uuid
from typing import Any

from sysweave.schemas.events import UnifiedTrace
from sysweave.validator.equivalence.compare import compare
from sysweave.validator.equivalence.harness import Harness, HarnessError, SideSummary


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--original", metavar="CMD", help="the reference program's command line")
    p.add_argument("--transpiled", metavar="CMD", help="the program to check against it")
    p.add_argument("--original-trace", metavar="ID|LABEL", help="compare two stored traces instead of running commands")
    p.add_argument("--transpiled-trace", metavar="ID|LABEL", help="the stored trace to check against --original-trace")
    p.add_argument("--clickhouse", metavar="URL", help="read the stored traces from this ClickHouse server "
                   "(clickhouse://HOST:9000/DB); default: --store or the embedded store")
    p.add_argument("--submit", action="store_true", help="send the stored-trace request to 'validator serve' over "
                   "Kafka (--kafka) instead of comparing here")
    p.add_argument("--kafka", metavar="BOOTSTRAP", help="the broker for --submit")
    p.add_argument("--workdir", help="each run starts in a fresh copy of DIR (default: an empty temporary directory)")
    p.add_argument("--tolerance", type=float, default=0.05, help="accepted for compatibility; unused (how many times "
                   "a file is opened is not an effect)")
    p.add_argument("--runs", type=int, default=1, help="run each side K times and mask what differs between its own runs")
    p.add_argument("--timeout", type=float, default=120.0, help="seconds per run before it is killed (undecided)")
    p.add_argument("--json", action="store_true", help="print the report as JSON on stdout")
    p.add_argument("--store", metavar="PATH|URL", help="store for the report and both traces: a directory (embedded "
                   "store, the default) or clickhouse://HOST:PORT/DB")
    p.add_argument("--no-store", action="store_true", help="do not store the report")


def side_trace(side: SideSummary, label: str = "", trace_id: bytes | None = None) -> UnifiedTrace:
    """The first run of a side through the one pipeline (``sysweave.streams.pipeline.build_trace``)."""
    from sysweave.streams.pipeline import build_trace

    return build_trace(side.runs[0].events, trace_id or os.urandom(16), label).trace


def data_flow(side: SideSummary) -> list[tuple[str, str, str]]:
    """Pipe/TCP edges between the run's processes, by role (edges from the one pipeline)."""
    from sysweave.validator.equivalence.observe import edge_roles

    run = side.runs[0]
    trace = side_trace(side)
    root = side.obs.root.pid if side.obs.root else run.result.root_pid
    host = next(iter(trace.processes))[0] if trace.processes else ""
    return edge_roles(trace, (host, root), run.workdir)


def validate(args: argparse.Namespace) -> tuple[dict[str, Any], SideSummary, SideSummary]:
    from sysweave.cli.runner import EbpfRunner
    from sysweave.schemas.errors import AgentError

    try:
        runner = EbpfRunner()
    except AgentError as exc:
        raise HarnessError(f"cannot trace: {exc}") from exc
    harness = Harness(args.workdir, args.timeout, runner)
    try:
        original = harness.run_side(args.original, args.runs)
        transpiled = harness.run_side(args.transpiled, args.runs)
    finally:
        harness.close()
    for side in (original, transpiled):
        side.obs.edges = data_flow(side)
    verdict = compare(original.obs, transpiled.obs)
    perf_a, perf_b = original.performance(), transpiled.performance()
    report = {
        **verdict.to_dict(),
        "original": args.original, "transpiled": args.transpiled,
        "masked": {"original": original.masked, "transpiled": transpiled.masked},
        "performance": {"original": perf_a, "transpiled": perf_b,
                        "speedup": perf_a["wall_s"] / perf_b["wall_s"] if perf_b["wall_s"] else None},
        "runs": args.runs, "tolerance": args.tolerance,
    }
    return report, original, transpiled


def store_report(args: argparse.Namespace, report: dict[str, Any], original: SideSummary, transpiled: SideSummary) -> None:
    from sysweave.validator.store import open_store

    store = open_store(args.store)  # a path (embedded store) or clickhouse://HOST:PORT/DB; None: the default
    try:
        ids = []
        for side, label in ((original, "original"), (transpiled, "transpiled")):
            trace = side_trace(side, f"validate {label}: {report[label]}"[:200])
            store.store_trace(trace, label=trace.label, backend=side.runs[0].result.backend,
                              exit_code=side.runs[0].result.exit_code)
            ids.append(trace.trace_id.hex())
        report["trace_ids"] = {"original": ids[0], "transpiled": ids[1]}
        store.insert("validation_results", [{
            "validation_id": uuid.uuid4().hex, "created_wall_ns": time.time_ns(), "original_cmd": args.original,
            "transpiled_cmd": args.transpiled, "original_trace_id": ids[0], "transpiled_trace_id": ids[1],
            "verdict": report["verdict"], "confidence": report["confidence"], "explanation": report["explanation"],
            "speedup": report["performance"]["speedup"] or 0.0, "report": json.dumps(report), "version": time.time_ns()}])
    finally:
        store.close()


def validate_stored(args: argparse.Namespace) -> int:
    """--original-trace/--transpiled-trace: compare two stored traces here, or --submit them to the service."""
    from sysweave.schemas.topics import ValidationRequest
    from sysweave.validator.equivalence.stored import validate_traces

    req = ValidationRequest(args.original_trace, args.transpiled_trace, uuid.uuid4().hex)
    if args.submit:
        if not args.kafka:
            print("sysweave: validate: --submit needs --kafka BOOTSTRAP", file=sys.stderr)
            return 2
        from kafka import KafkaProducer

        from sysweave.schemas import topics

        producer = KafkaProducer(bootstrap_servers=args.kafka.split(","), acks="all")
        try:
            producer.send(topics.TOPIC_VALIDATION, key=req.key(), value=req.encode()).get(timeout=30)
        finally:
            producer.close(timeout=5)
        print(f"submitted validation request {req.request_id} "
              f"(the verdict lands in validation_results, validation_id = {req.request_id})")
        return 0
    from sysweave.validator.store import open_store
    from sysweave.validator.store.base import StoreError

    try:
        store = open_store(args.clickhouse or args.store)
    except StoreError as exc:
        print(f"sysweave: validate: could not decide: {exc}", file=sys.stderr)
        return 2
    try:
        traces, backends = [], []
        for ref in (args.original_trace, args.transpiled_trace):
            trace = store.load_trace(ref)
            traces.append(trace)
            rows = store.execute(f"SELECT backend FROM traces WHERE trace_id = '{trace.trace_id.hex()}' LIMIT 1")
            backends.append(str(rows[0][0]) if rows else "")
    except (StoreError, ValueError) as exc:
        print(f"sysweave: validate: could not decide: {exc}", file=sys.stderr)
        return 2
    finally:
        store.close()
    report = validate_traces(traces[0], traces[1], (backends[0], backends[1]))
    report["original"], report["transpiled"] = args.original_trace, args.transpiled_trace
    _print(args, report)
    return 0 if report["verdict"] == "equivalent" else 1


def _print(args: argparse.Namespace, report: dict[str, Any]) -> None:
    if args.json:
        print(json.dumps(report, indent=2))
        return
    perf = report["performance"]
    speed = f"{perf['speedup']:.2f}x" if perf["speedup"] else "n/a"
    print(f"{report['verdict'].upper()} (confidence {report['confidence']:.2f}): {report['explanation']}")
    for s in report.get("symptoms", [])[:10]:
        print(f"  then: {s['explanation']}")
    print(f"  wall {perf['original']['wall_s']:.3f}s vs {perf['transpiled']['wall_s']:.3f}s (speedup {speed}), "
          f"syscalls {perf['original']['syscalls']:.0f} vs {perf['transpiled']['syscalls']:.0f}")
    for note in report["notes"]:
        print(f"  note: {note}")


def run(args: argparse.Namespace) -> int:
    if args.original_trace or args.transpiled_trace:
        if not (args.original_trace and args.transpiled_trace) or args.original or args.transpiled:
            print("sysweave: validate: give --original-trace and --transpiled-trace (and no commands)", file=sys.stderr)
            return 2
        return validate_stored(args)
    if not (args.original and args.transpiled):
        print("sysweave: validate: give --original and --transpiled (or --original-trace and --transpiled-trace)",
              file=sys.stderr)
        return 2
    if args.runs < 1 or not 0 <= args.tolerance < 1 or args.timeout <= 0:
        print("sysweave: validate: --runs must be >= 1, --tolerance in [0, 1), --timeout > 0", file=sys.stderr)
        return 2
    if args.workdir and not os.path.isdir(args.workdir):
        print(f"sysweave: validate: --workdir {args.workdir}: not a directory", file=sys.stderr)
        return 2
    try:
        report, original, transpiled = validate(args)
    except HarnessError as exc:
        print(f"sysweave: validate: could not decide: {exc}", file=sys.stderr)
        return 2
    if not args.no_store:
        try:
            store_report(args, report, original, transpiled)
        except Exception as exc:  # storing is a side effect: the verdict stands
            print(f"sysweave: validate: report not stored: {exc}", file=sys.stderr)
    _print(args, report)
    return 0 if report["verdict"] == "equivalent" else 1
