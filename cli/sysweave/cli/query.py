"""``sysweave query "SQL"``: SQL over the stored trace history (embedded chdb store)."""

from __future__ import annotations

import argparse
import sys

from sysweave.validator.store.base import StoreError
from sysweave.validator.store.embedded import EmbeddedStore, default_store_path
from sysweave.validator.store.named_queries import NAMED_QUERIES

FORMATS = {"table": "PrettyCompactMonoBlock", "json": "JSON", "csv": "CSVWithNames", "tsv": "TSVWithNames"}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("sql", nargs="?", help="a ClickHouse SQL query (tables: SHOW TABLES)")
    p.add_argument("--name", help="run a named query (see --list)")
    p.add_argument("--list", action="store_true", help="list the named queries")
    p.add_argument("--format", choices=sorted(FORMATS), default="table")
    p.add_argument("--store", metavar="PATH", help="trace store directory (default: $XDG_DATA_HOME/sysweave/store)")


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
        store = EmbeddedStore(args.store or default_store_path())
        sys.stdout.buffer.write(store.query(sql, FORMATS[args.format]))
        store.close()
    except StoreError as exc:
        print(f"sysweave: query failed: {exc}", file=sys.stderr)
        return 1
    return 0
