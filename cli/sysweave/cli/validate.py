"""``sysweave validate``: does the transpiled program behave like the original, seen from outside?

Exit status: 0 equivalent, 1 divergent, 2 could not decide (reason on stderr).
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
    p.add_argument("--original", required=True, metavar="CMD", help="the reference program's command line")
    p.add_argument("--transpiled", required=True, metavar="CMD", help="the program to check against it")
    p.add_argument("--workdir", help="each run starts in a fresh copy of DIR (default: an empty temporary directory)")
    p.add_argument("--tolerance", type=float, default=0.05, help="allowed relative difference in operation counts (default 0.05)")
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
    verdict = compare(original.obs, transpiled.obs, args.tolerance)
    if original.masked or transpiled.masked:
        verdict.confidence = min(verdict.confidence, 0.9)
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
            store.store_trace(trace, label=trace.label, backend="ebpf", exit_code=side.runs[0].result.exit_code)
            ids.append(trace.trace_id.hex())
        report["trace_ids"] = {"original": ids[0], "transpiled": ids[1]}
        store.insert("validation_results", [{
            "validation_id": uuid.uuid4().hex, "created_wall_ns": time.time_ns(), "original_cmd": args.original,
            "transpiled_cmd": args.transpiled, "original_trace_id": ids[0], "transpiled_trace_id": ids[1],
            "verdict": report["verdict"], "confidence": report["confidence"], "explanation": report["explanation"],
            "speedup": report["performance"]["speedup"] or 0.0, "report": json.dumps(report), "version": time.time_ns()}])
    finally:
        store.close()


def run(args: argparse.Namespace) -> int:
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
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        perf = report["performance"]
        speed = f"{perf['speedup']:.2f}x" if perf["speedup"] else "n/a"
        print(f"{report['verdict'].upper()} (confidence {report['confidence']:.2f}): {report['explanation']}")
        print(f"  wall {perf['original']['wall_s']:.3f}s vs {perf['transpiled']['wall_s']:.3f}s (speedup {speed}), "
              f"syscalls {perf['original']['syscalls']:.0f} vs {perf['transpiled']['syscalls']:.0f}")
        for note in report["notes"]:
            print(f"  note: {note}")
    return 0 if report["verdict"] == "equivalent" else 1
