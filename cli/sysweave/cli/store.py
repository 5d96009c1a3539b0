"""``sysweave store info|compact|prune|upgrade``: see and manage the embedded trace store.

    sysweave store info [--json]                 traces, reports, spans, parts, bytes, oldest and newest, path
    sysweave store compact [--full]              merge the parts commands wrote into one (Parquet, ZSTD)
    sysweave store prune --older-than DAYS | --keep N   remove old traces (and reports older than DAYS)
    sysweave store upgrade                       convert a store of the earlier layout (a chdb database) in place

Every subcommand takes ``--store PATH`` (default: $SYSWEAVE_STORE or ~/.local/share/sysweave/store).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict

from sysweave.validator.store.base import StoreError
from sysweave.validator.store.paths import default_store_path

__all__ = ["add_arguments", "run"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="store_cmd", metavar="ACTION")
    where = f"store directory (default: $SYSWEAVE_STORE or {default_store_path()})"
    i = sub.add_parser("info", help="what the store holds: traces, reports, spans, parts, bytes, oldest, path")
    i.add_argument("--json", action="store_true", help="as one JSON object")
    c = sub.add_parser("compact", help="merge the parts commands wrote into one (also runs in the background "
                                       "once 64 parts wait; $SYSWEAVE_COMPACT_AT, 0: never)")
    c.add_argument("--full", action="store_true", help="merge every part, the merged ones too")
    r = sub.add_parser("prune", help="remove old traces (retention for every write: $SYSWEAVE_RETENTION_DAYS)")
    r.add_argument("--older-than", type=float, metavar="DAYS", help="traces started more than DAYS ago, and "
                                                                      "reports stored more than DAYS ago")
    r.add_argument("--keep", type=int, metavar="N", help="all but the N newest traces")
    u = sub.add_parser("upgrade", help="convert a store of the earlier layout (a chdb database) into parts, in place")
    for q in (i, c, r, u):
        q.add_argument("--store", metavar="PATH", help=where)


def _when(ns: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(ns / 1e9)) if ns else "-"


def run(args: argparse.Namespace) -> int:
    if not args.store_cmd:
        print("sysweave store: give an action: info, compact, prune or upgrade (sysweave store --help)", file=sys.stderr)
        return 2
    path = args.store or default_store_path()
    try:
        return _ACTIONS[args.store_cmd](args, str(path))
    except (StoreError, ValueError, OSError) as exc:
        print(f"sysweave store {args.store_cmd}: {exc}", file=sys.stderr)
        return 1


def _info(args: argparse.Namespace, path: str) -> int:
    from sysweave.validator.store.compact import info
    from sysweave.validator.store.parts import StoreLayout

    s = info(StoreLayout(path, create=False))
    if args.json:
        print(json.dumps(asdict(s)))
        return 0
    print(f"store    {s.path}\ntraces   {s.traces:,} ({s.spans:,} syscall spans)\nreports  {s.validations:,}\n"
          f"parts    {s.parts:,} ({s.merged_parts} merged)\nbytes    {s.bytes:,}\n"
          f"oldest   {_when(s.oldest_wall_ns)}\nnewest   {_when(s.newest_wall_ns)}")
    return 0


def _compact(args: argparse.Namespace, path: str) -> int:
    from sysweave.validator.store.compact import compact
    from sysweave.validator.store.parts import StoreLayout

    r = compact(StoreLayout(path, create=False), full=args.full)
    if r is None or not r.parts_in:
        print("nothing to merge", file=sys.stderr)
        return 0
    print(f"merged {r.parts_in:,} parts: {r.bytes_in:,} -> {r.bytes_out:,} bytes in {r.seconds:.1f} s", file=sys.stderr)
    return 0


def _prune(args: argparse.Namespace, path: str) -> int:
    from sysweave.validator.store.compact import prune
    from sysweave.validator.store.parts import StoreLayout

    if args.older_than is None and args.keep is None:
        print("sysweave store prune: give --older-than DAYS and/or --keep N", file=sys.stderr)
        return 2
    if (args.older_than is not None and args.older_than < 0) or (args.keep is not None and args.keep < 0):
        print("sysweave store prune: DAYS and N must not be negative", file=sys.stderr)
        return 2
    removed, freed = prune(StoreLayout(path, create=False), args.older_than, args.keep)
    print(f"removed {removed:,} traces, freed {freed:,} bytes", file=sys.stderr)
    return 0


def _upgrade(_args: argparse.Namespace, path: str) -> int:
    from sysweave.validator.store.upgrade import upgrade

    r = upgrade(path)
    print(f"converted {r.traces:,} traces ({r.rows:,} rows): {r.bytes_before:,} -> {r.bytes_after:,} bytes", file=sys.stderr)
    return 0


_ACTIONS = {"info": _info, "compact": _compact, "prune": _prune, "upgrade": _upgrade}
