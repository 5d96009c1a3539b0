"""``sysweave query "SQL"``: SQL over the stored trace history, in the embedded store (default) or a ClickHouse
server (``--clickhouse clickhouse://HOST:PORT/DB``)."""

from __future__ import annotations

import argparse
import os
import sys

from sysweave.validator.store import open_store
from sysweave.validator.store.base import FORMATS, StoreError
from sysweave.validator.store.named_queries import NAMED_QUERIES
from sysweave.validator.store.paths import default_store_path

__all__ = ["add_arguments", "add_store_arguments", "run", "store_target"]


def add_store_arguments(p: argparse.ArgumentParser) -> None:
    """--store PATH | --clickhouse URL (shared by query and export)."""
    g = p.add_mutually_exclusive_group()
    g.add_argument("--store", metavar="PATH",
                   help=f"embedded trace store directory (default: {default_store_path()}, from $SYSWEAVE_STORE or "
                        "$XDG_DATA_HOME; sysweave store info shows what it holds)")
    g.add_argument("--clickhouse", metavar="URL", default=os.environ.get("SYSWEAVE_CLICKHOUSE"),
                   help="a ClickHouse server instead: clickhouse://HOST:PORT/DATABASE (native port, e.g. "
                        "clickhouse://127.0.0.1:9000/sysweave; default $SYSWEAVE_CLICKHOUSE)")


def store_target(args: argparse.Namespace) -> str | None:
    if args.store:
        return str(args.store)
    if args.clickhouse:
        url = str(args.clickhouse)
        return url if "://" in url else f"clickhouse://{url}"
    return None


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("sql", nargs="?", help="a ClickHouse SQL query (tables: SHOW TABLES)")
    p.add_argument("--name", help="run a named query (see --list)")
    p.add_argument("--list", action="store_true", help="list the named queries")
    p.add_argument("--format", choices=FORMATS, default="table")
    add_store_arguments(p)


def run(args: argparse.Namespace) -> int:
    if args.list:
        for name, (desc, _sql) in NAMED_QUERIES.items():
            print(f"{name:20} {desc}")
        return 0
    if args.name:
        if args.name not in NAMED_QUERIES:
            print(f"sysweave: unknown named query '{args.name}' (sysweave query --list)", file=sys.stderr)
            return 2
        sql = NAMED_QUERIES[args.name][1]
    elif args.sql:
        sql = args.sql
    else:
        print("sysweave: query needs SQL or --name NAME (see --list)", file=sys.stderr)
        return 2
    try:
        store = open_store(store_target(args))
    except (StoreError, ValueError) as exc:
        print(f"sysweave: query: {exc}", file=sys.stderr)
        return 1
    try:
        out = store.query(sql, args.format)
    except StoreError as exc:
        print(f"sysweave: query failed on the {store.description}: {exc}", file=sys.stderr)
        return 1
    finally:
        store.close()
    sys.stdout.buffer.write(out)
    return 0
