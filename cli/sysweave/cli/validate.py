"""``sysweave validate``: does the transpiled program have the same effects as the original?

    sysweave validate --original CMD --transpiled CMD [--workdir DIR --stdin FILE --env K=V --runs K --json] [-- ARG...]
    sysweave validate --original CMD --transpiled CMD --cases cases.jsonl [--junit report.xml] [--max-slowdown X]
    sysweave validate --original-trace ID|LABEL --transpiled-trace ID|LABEL [--clickhouse URL | --store PATH]
    sysweave validate --original-trace A --transpiled-trace B --submit --kafka BOOTSTRAP   # to validator serve

Exit status: 0 equivalent, 1 divergent (a case diverged, hung where the other finished, or was slower than
--max-slowdown), 2 could not decide or error, 130/143/129 interrupted by SIGINT/SIGTERM/SIGHUP. With --json
every exit prints exactly one report; --junit writes its file on every exit. The report's schema, the
timeouts and cancellation: docs/validate-report.md; what "equivalent" means: docs/equivalence.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
import traceback
import uuid
from typing import Any, NoReturn

from sysweave.cli.fuzz import add_arguments as fuzz_arguments
from sysweave.cli.signals import Cancellation
from sysweave.cli.validate_cases import Interrupted, run_case
from sysweave.schemas.events import UnifiedTrace
from sysweave.validator.equivalence.cases import Case, CaseError, load_cases, parse_env
from sysweave.validator.equivalence.harness import Harness, HarnessError, SideSummary
from sysweave.validator.equivalence.junit import write_junit
from sysweave.validator.equivalence.report import build_report, error_report, exit_status, summary_table
from sysweave.validator.store.paths import default_store_path

__all__ = ["DEFAULT_TIMEOUT_S", "add_arguments", "cost_line", "run", "validate"]

DEFAULT_TIMEOUT_S = 60.0
_SIGNALS = Cancellation(Interrupted)


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
    p.add_argument("--stdin", metavar="FILE", help="both programs read FILE on stdin (default: /dev/null); "
                   "- reads validate's own stdin once and gives both the same bytes")
    p.add_argument("--env", metavar="KEY=VALUE", action="append", default=[],
                   help="add to both programs' environment (repeatable)")
    p.add_argument("--cases", metavar="FILE", help="JSON Lines, one case per line: name, args, stdin or "
                   "stdin_file, env, workdir (docs/validate-report.md); every case is validated")
    p.add_argument("--junit", metavar="FILE", help="also write JUnit XML (one testcase per case), on every exit path")
    p.add_argument("extra_args", nargs="*", metavar="ARG", help="after --: arguments appended to both commands")
    p.add_argument("--tolerance", type=float, default=0.05, help="accepted for compatibility; unused (how many times "
                   "a file is opened is not an effect)")
    p.add_argument("--runs", type=int, default=1, help="run each side K times and mask what differs between its own runs")
    p.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S,
                   help=f"seconds a run may take at most (default {DEFAULT_TIMEOUT_S:.0f}); once one side has finished, "
                   "the other gets max(10 x its time, 5 s), at most this (docs/validate-report.md)")
    p.add_argument("--max-slowdown", type=float, metavar="X", help="fail a case whose translation takes more than X "
                   "times the original's wall time (reported apart from behavioural divergence)")
    p.add_argument("--strict", action="store_true", help="exit 2 when a warning says the verdict may not mean what it "
                   "says (both sides failed the same way before running the program)")
    p.add_argument("--json", action="store_true", help="print the report as one JSON object on stdout, on every exit")
    p.add_argument("--store", metavar="PATH|URL", help="store for the report and both traces: a directory (embedded "
                   f"store; default: {default_store_path()}) or clickhouse://HOST:PORT/DB")
    p.add_argument("--no-store", action="store_true", help="do not store the report")
    fuzz_arguments(p)  # --fuzz N, --seed, --corpus DIR (cli/fuzz.py)
    setattr(p, "error", lambda message: usage_error(p, message))  # noqa: B010 (mypy: no method assignment) --json/--junit: a report even for a usage error


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


def validate(args: argparse.Namespace, cases: list[Case], sink: list[dict[str, Any]],
             warnings: list[str]) -> None:
    """Run every case; each entry goes to ``sink`` as soon as it is decided (an interrupted run keeps them)."""
    from sysweave.cli.runner import EbpfRunner
    from sysweave.schemas.errors import AgentError

    try:
        runner = EbpfRunner()
    except AgentError as exc:
        raise HarnessError(f"cannot trace: {exc}") from exc
    harness = Harness(args.workdir, args.timeout, runner)
    try:
        for case in cases:
            try:
                out = run_case(args, harness, case, data_flow)
            except Interrupted as exc:
                if exc.entry is not None:
                    sink.append(exc.entry)
                raise
            if out.legacy is not None and out.sides is not None and not args.no_store:
                with _SIGNALS.deferred():  # the store is never left with half a report
                    try:
                        store_report(args, out.legacy, *out.sides)
                        out.entry["trace_ids"] = out.legacy.get("trace_ids")
                    except Exception as exc:  # storing is a side effect: the verdict stands
                        warnings.append(f"case {case.name!r}: report not stored: {exc}")
            warnings.extend(out.warnings)
            sink.append(out.entry)
            if len(cases) > 1:  # a long case file shows progress in the CI log (stderr: stdout stays the report)
                e = out.entry
                print(f"[{len(sink)}/{len(cases)}] {e['name']}: {e['verdict'].upper()}"
                      f"{' (slow)' if e.get('slow') else ''}: {e['reason']}", file=sys.stderr, flush=True)
    finally:
        harness.close()


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
            return finish(args, error_report("--submit needs --kafka BOOTSTRAP"))
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
        return finish(args, error_report(f"could not decide: {exc}", original=args.original_trace,
                                         transpiled=args.transpiled_trace))
    try:
        traces, backends = [], []
        for ref in (args.original_trace, args.transpiled_trace):
            trace = store.load_trace(ref)
            traces.append(trace)
            rows = store.execute(f"SELECT backend FROM traces WHERE trace_id = '{trace.trace_id.hex()}' LIMIT 1")
            backends.append(str(rows[0][0]) if rows else "")
    except (StoreError, ValueError) as exc:
        return finish(args, error_report(f"could not decide: {exc}", original=args.original_trace,
                                         transpiled=args.transpiled_trace))
    finally:
        store.close()
    report = validate_traces(traces[0], traces[1], (backends[0], backends[1]))
    report["original"], report["transpiled"] = args.original_trace, args.transpiled_trace
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        _print_stored(report)
    return {"equivalent": 0, "divergent": 1}.get(report["verdict"], 2)


def _print_stored(report: dict[str, Any]) -> None:
    perf = report["performance"]
    speed = f"{perf['speedup']:.2f}x" if perf["speedup"] else "n/a"
    print(f"{report['verdict'].upper()} (confidence {report['confidence']:.2f}): {report['explanation']}")
    for s in report.get("symptoms", [])[:10]:
        print(f"  then: {s['explanation']}")
    print(f"  wall {perf['original']['wall_s']:.3f}s vs {perf['transpiled']['wall_s']:.3f}s (speedup {speed}), "
          f"syscalls {perf['original']['syscalls']:.0f} vs {perf['transpiled']['syscalls']:.0f}")
    for note in report["notes"]:
        print(f"  note: {note}")


def cost_line(c: dict[str, Any]) -> str:
    """'the translation takes 0.21x the time, 0.50x the CPU and 0.35x the memory (wall 0.120 s vs 0.025 s, ...)'."""
    a, b, r = c["original"], c["transpiled"], c.get("ratio", {})
    if r.get("wall") is None:
        return f"wall {a['wall_s'] or 0:.3f}s vs {b['wall_s'] or 0:.3f}s"
    parts = [f"{r['wall']:.2f}x the time"] + ([f"{r['cpu']:.2f}x the CPU"] if r.get("cpu") is not None else []) + \
        ([f"{r['memory']:.2f}x the memory"] if r.get("memory") is not None else [])
    return (f"the translation takes {', '.join(parts)} (wall {a['wall_s']:.3f} s vs {b['wall_s']:.3f} s, CPU "
            f"{a['cpu_s'] or 0:.3f} s vs {b['cpu_s'] or 0:.3f} s" + (
                f", peak memory {a['max_rss_kb']:,} KiB vs {b['max_rss_kb']:,} KiB)"
                if a["max_rss_kb"] and b["max_rss_kb"] else "; peak memory not measured: no memory cgroup)"))


def _print(args: argparse.Namespace, report: dict[str, Any]) -> None:
    for w in report.get("warnings", []):
        print(f"sysweave: validate: warning: {w}", file=sys.stderr)
    if args.json:
        print(json.dumps(report, indent=2))
        return
    if len(report.get("cases", [])) != 1:
        if report.get("cases"):
            print(summary_table(report))
        print(f"{report['verdict'].upper()}: {report['reason']}")
        return
    c = report["cases"][0]
    conf = f" (confidence {c['confidence']:.2f})" if "confidence" in c else ""
    print(f"{c['verdict'].upper()}{conf}: {c['reason']}")
    for s in c.get("symptoms", [])[:10]:
        print(f"  then: {s['explanation']}")
    if c["original"]["wall_s"] is not None and c["transpiled"]["wall_s"] is not None:
        print(f"  {cost_line(c)}")
    if c.get("slow"):
        print(f"  SLOW: {c['slow']}")
    for note in c.get("notes", []):
        print(f"  note: {note}")


def run(args: argparse.Namespace) -> int:
    if args.original_trace or args.transpiled_trace:
        if not (args.original_trace and args.transpiled_trace) or args.original or args.transpiled:
            return finish(args, error_report("give --original-trace and --transpiled-trace (and no commands)"))
        return validate_stored(args)
    with _SIGNALS.installed():
        return run_commands(args)


def run_commands(args: argparse.Namespace) -> int:
    """--original/--transpiled: every case, one report on every exit path."""
    top = {"original": args.original, "transpiled": args.transpiled, "runs": args.runs, "timeout_s": args.timeout}
    try:
        cases = check_args(args)
    except (CaseError, ValueError) as exc:
        return finish(args, error_report(str(exc), **top))
    if args.fuzz:
        from sysweave.cli.fuzz import run as fuzz_run

        return fuzz_run(args, cases, validate)
    entries: list[dict[str, Any]] = []
    warnings: list[str] = []
    try:
        validate(args, cases, entries, warnings)
    except Interrupted as exc:
        _SIGNALS.note(exc.signal_number)
        return finish(args, build_report(entries, warnings, signal_number=exc.signal_number,
                                         cases_total=len(cases), **top))
    except (HarnessError, CaseError) as exc:
        return finish(args, build_report(entries, warnings, error=f"could not decide: {exc}", **top))
    except Exception as exc:  # a bug: the traceback for the report to us, and still the one report, exit 2
        traceback.print_exc()
        return finish(args, build_report(entries, warnings, error=f"internal error: {type(exc).__name__}: {exc} "
                                         "(a bug in sysweave: please report it with the traceback above)", **top))
    report = build_report(entries, warnings, **top)
    if len(entries) == 1 and "confidence" in entries[0]:  # one case: its comparison at the top level too
        legacy = {k: v for k, v in entries[0].items() if k not in ("name", "verdict", "reason", "original",
                                                                   "transpiled")}
        report = {**legacy, "explanation": entries[0]["reason"], **report}
    if args.strict and report["warnings"] and report["verdict"] == "equivalent":
        report["verdict"], report["reason"] = "undecided", "--strict: " + report["warnings"][0]
        report["exit_status"] = exit_status(report)
    return finish(args, report)


def check_args(args: argparse.Namespace) -> list[Case]:
    """The cases to run, or CaseError/ValueError saying which option is wrong."""
    if not (args.original and args.transpiled):
        raise ValueError("give --original and --transpiled (or --original-trace and --transpiled-trace)")
    if args.runs < 1 or not 0 <= args.tolerance < 1 or args.timeout <= 0:
        raise ValueError("--runs must be >= 1, --tolerance in [0, 1), --timeout > 0")
    if args.max_slowdown is not None and args.max_slowdown <= 0:
        raise ValueError("--max-slowdown must be > 0 (e.g. 2: fail a case whose translation takes over 2x the time)")
    if args.workdir and not os.path.isdir(args.workdir):
        raise ValueError(f"--workdir {args.workdir}: not a directory")
    env = parse_env(args.env)
    stdin, piped = stdin_source(args.stdin)
    if not args.cases:
        case = Case("default", tuple(args.extra_args), piped, stdin, env, None)
        case.check()
        return [case]
    return [dataclasses.replace(c, args=(*args.extra_args, *c.args), env={**env, **c.env},
                                stdin_file=c.stdin_file if c.stdin is not None or c.stdin_file else stdin,
                                stdin=c.stdin if c.stdin is not None or c.stdin_file else piped)
            for c in load_cases(args.cases)]


def stdin_source(arg: str | None) -> tuple[str | None, bytes | None]:
    """``--stdin``'s input as (a regular file's absolute path, None) or (None, the bytes read once): ``-``,
    ``/dev/stdin``, a FIFO or a process substitution can be read only once, and both programs (every case,
    every rerun) must get the same bytes."""
    if not arg:
        return None, None
    path = "/dev/stdin" if arg == "-" else os.path.abspath(arg)
    if os.path.isfile(path):
        return path, None
    if not os.path.exists(path):
        raise ValueError(f"--stdin {arg}: no such file (a relative path is taken from the current directory; "
                         "give - to pass validate's own standard input)")
    try:
        with open(path, "rb") as f:
            return None, f.read()
    except OSError as exc:
        raise ValueError(f"--stdin {arg}: cannot read it: {exc.strerror or exc}") from exc


def finish(args: argparse.Namespace, report: dict[str, Any]) -> int:
    """Print the report (JSON or text), write --junit, and return the exit status: every exit path ends here."""
    report.setdefault("explanation", report["reason"])  # the field's name before schema version 1
    if report["verdict"] in ("error", "interrupted") and not args.json:
        print(f"sysweave: validate: {report['reason']}", file=sys.stderr)
    if getattr(args, "junit", None):
        try:
            write_junit(args.junit, report)
        except OSError as exc:
            print(f"sysweave: validate: cannot write --junit {args.junit}: {exc.strerror or exc}", file=sys.stderr)
    if report["verdict"] != "error" or args.json:
        _print(args, report)
    return int(report["exit_status"])


def usage_error(parser: argparse.ArgumentParser, message: str) -> NoReturn:
    """argparse's error(): with --json (or --junit) the usage error is a report too; exits 2."""
    argv = sys.argv[1:]
    ns = argparse.Namespace(json="--json" in argv, junit=_option_value(argv, "--junit"))
    report = error_report(f"usage: {message}")
    if ns.junit:
        try:
            write_junit(ns.junit, report)
        except OSError as exc:
            print(f"sysweave: validate: cannot write --junit {ns.junit}: {exc.strerror or exc}", file=sys.stderr)
    if ns.json:
        print(json.dumps(report, indent=2))
    parser.print_usage(sys.stderr)
    print(f"{parser.prog}: error: {message}", file=sys.stderr)
    sys.exit(2)


def _option_value(argv: list[str], name: str) -> str | None:
    for i, a in enumerate(argv):
        if a == name and i + 1 < len(argv):
            return argv[i + 1]
        if a.startswith(name + "="):
            return a.split("=", 1)[1]
    return None
