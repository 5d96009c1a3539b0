"""The ``sysweave`` command. Subcommands from other components register only if installed, so the host
agent image (schemas + agents) has ``sysweave trace`` without faust or clickhouse-driver."""

from __future__ import annotations

import argparse
import importlib
import sys

__all__ = ["OPTIONAL", "build_parser", "main"]

# (subcommand, module providing add_arguments(parser) and run(args) -> int, help)
OPTIONAL = [
    ("query", "sysweave.cli.query", "run SQL over the stored trace history"),
    ("store", "sysweave.cli.store", "see and manage the embedded trace store: info, compact, prune, upgrade"),
    ("validate", "sysweave.cli.validate", "check that two programs behave the same from outside"),
    ("streams", "sysweave.cli.streams", "stream processing workers (Faust): sampling, assembly, clock sync"),
    ("export", "sysweave.cli.export", "write a stored trace as Perfetto JSON or send it over OTLP"),
    ("validator", "sysweave.cli.validator", "the validator service (serve) and ClickHouse schema (migrate)"),
    ("topics", "sysweave.cli.topics", "create sysweave's Kafka topics (partitions, replication, retention)"),
    ("demo", "sysweave.cli.demo", "trace a bundled workload and validate a bundled pair (make run)"),
    ("doctor", "sysweave.cli.doctor", "check this host for capture: bpffs, tracefs, headers, privileges (--fix, --json)"),
]


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """``only``: the subcommand being run, when known; the others' modules are not imported (start-up:
    importing every subcommand costs ~0.2 s, a third of ``sysweave trace -c -- true``)."""
    parser = argparse.ArgumentParser(prog="sysweave", description="unified tracing and behavioural equivalence")
    sub = parser.add_subparsers(dest="cmd", metavar="COMMAND")
    if only in (None, "trace"):
        from sysweave.cli import trace

        p = sub.add_parser("trace", **trace.parser_help())
        trace.add_arguments(p)
        p.set_defaults(run=trace.run)
    if only in (None, "agent"):
        from sysweave.cli import agent

        a = sub.add_parser("agent", help="capture on this host and publish to Kafka (the per-host daemon)")
        agent.add_arguments(a)
        a.set_defaults(run=agent.run)
    for name, module, help_text in OPTIONAL:
        if only not in (None, name):
            continue
        try:
            mod = importlib.import_module(module)
        except ImportError as exc:
            missing = exc.name or module
            q = sub.add_parser(name, help=f"{help_text} (unavailable: {missing} not installed)")
            q.set_defaults(run=lambda _a, m=missing, n=name: _unavailable(n, m))
            continue
        q = sub.add_parser(name, help=help_text)
        mod.add_arguments(q)
        q.set_defaults(run=mod.run)
    return parser


def _unavailable(name: str, missing: str) -> int:
    print(f"sysweave: '{name}' needs {missing}: install the full package (pip install sysweave)", file=sys.stderr)
    return 2


def main(argv: list[str] | None = None) -> int:
    args_in = sys.argv[1:] if argv is None else argv
    first = args_in[0] if args_in else None
    known = {"trace", "agent", *(name for name, _, _ in OPTIONAL)}
    parser = build_parser(first if first in known else None)
    args = parser.parse_args(argv)
    if not getattr(args, "run", None):
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(args.run(args))
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 141


if __name__ == "__main__":
    sys.exit(main())
