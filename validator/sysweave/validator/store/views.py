"""The embedded store's tables as SQL over its part files: what ``sysweave query`` sees under each table name.

Every table of the column map is a view over ``file()`` of its parts (the Native files commands write and the
Parquet files compaction writes), reading the stored columns (``rows.stored``). syscall_spans adds its derived
columns with the ALIAS expressions of its migration (0040), read from that file, so the server and the embedded
store derive them by the same text. The server's two materialised views become plain views computing the same
aggregate states from their source table (their ``AS SELECT`` read from 0014 and 0045), so ``sumMerge`` and
``countMerge`` queries run unchanged. A view is defined only for the tables a statement names (each definition
costs milliseconds; ``SELECT 1`` needs none).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import cache
from importlib import resources

from sysweave.schemas.rows import DERIVED, TABLES, stored
from sysweave.validator.store.base import quote

__all__ = ["AGGREGATE_VIEWS", "VIEW_NAMES", "all_views", "derived_expressions", "source", "view_sql", "views_for"]

# view -> (migration file whose AS SELECT defines it, the table it reads)
AGGREGATE_VIEWS: dict[str, tuple[str, str]] = {"syscall_latency_daily": ("0014_syscall_latency_daily.sql", "syscall_aggregates"),
                                               "trace_index": ("0045_trace_index.sql", "syscall_spans")}
VIEW_NAMES: tuple[str, ...] = (*TABLES, *AGGREGATE_VIEWS)
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_EVERYTHING = re.compile(r"\b(SHOW|DESCRIBE|DESC|EXISTS|system)\b", re.I)


def _sql_file(name: str) -> str:
    return resources.files("sysweave.schemas").joinpath("sql", name).read_text("utf-8")


@cache
def derived_expressions(table: str) -> tuple[tuple[str, str], ...]:
    """(column, ALIAS expression cast to the column's type) of a table's derived columns, from its migration
    (syscall_spans: 0040)."""
    if table not in DERIVED:
        return ()
    text = _sql_file("0040_syscall_spans_v2.sql")
    # an ALIAS column has its declared type; the bare expression may not (UInt64 - UInt64 is Int64): cast to it
    found = {m.group(1): f"CAST(({m.group(3)}) AS {m.group(2)})"
             for m in re.finditer(r"^\s*(\w+) ([\w()]+) ALIAS (.*?),?$", text, re.M)}
    missing = [c for c in DERIVED[table] if c not in found]
    if missing:
        raise RuntimeError(f"0040_syscall_spans_v2.sql: no ALIAS expression for {missing}")
    return tuple((c, found[c]) for c in DERIVED[table])


@cache
def _aggregate_select(view: str) -> str:
    text = " ".join(line for line in _sql_file(AGGREGATE_VIEWS[view][0]).splitlines() if not line.lstrip().startswith("--"))
    m = re.search(r"\bAS (SELECT .*)$", text, re.S)
    if m is None:
        raise RuntimeError(f"{AGGREGATE_VIEWS[view][0]}: no AS SELECT")
    return " ".join(m.group(1).split())


def source(table: str, globs: Iterable[tuple[str, str]]) -> str:
    """A subquery giving ``table``'s columns (stored, then derived) from files: ``globs`` are (path pattern, format)
    pairs, e.g. ('/s/parts/*/hosts.native', 'Native'); a pattern matching no file adds no rows."""
    cols = stored(table)
    structure = quote(", ".join(f"{c.name} {c.type}" for c in cols))
    union = " UNION ALL ".join(f"SELECT * FROM file({quote(pattern)}, {fmt}, {structure})" for pattern, fmt in globs)
    derived = "".join(f", {expr} AS {name}" for name, expr in derived_expressions(table))
    return f"SELECT {', '.join(c.name for c in cols)}{derived} FROM ({union})"


def view_sql(name: str, parts_dir: str) -> str:
    """CREATE VIEW for one table (or aggregate view) over every part under ``parts_dir``."""
    if name in AGGREGATE_VIEWS:
        return f"CREATE VIEW {name} AS {_aggregate_select(name)}"
    globs = [(f"{parts_dir}/*/{name}.native", "Native"), (f"{parts_dir}/*/{name}.parquet", "Parquet")]
    return f"CREATE VIEW {name} AS {source(name, globs)}"


def views_for(sql: str) -> list[str]:
    """The views a statement needs, dependencies first: the table names it mentions (all of them for SHOW,
    DESCRIBE, EXISTS and system tables)."""
    if _EVERYTHING.search(sql):
        return all_views()
    words = set(_WORD.findall(sql))
    needed = [v for v in VIEW_NAMES if v in words]
    for view, (_file, base) in AGGREGATE_VIEWS.items():
        if view in needed and base not in needed:
            needed.insert(0, base)
    return needed


def all_views() -> list[str]:
    return list(VIEW_NAMES)
