"""Query results as text, for a store whose protocol returns rows rather than formatted output (the native
protocol): the same four shapes the embedded store asks chdb for (PrettyCompact, JSON, CSVWithNames,
TSVWithNames), so ``sysweave query`` prints alike on both stores.
"""

from __future__ import annotations

import csv
import datetime
import io
import json
from collections.abc import Sequence
from typing import Any

from sysweave.validator.store.base import OutputFormat

__all__ = ["format_rows"]


def _text(v: Any, nested: bool = False) -> str:
    """ClickHouse's text form of a value (arrays as literals, NULL as \\N at top level)."""
    if v is None:
        return "NULL" if nested else "\\N"
    if isinstance(v, bytes):
        v = v.decode("utf-8", "replace")
    if isinstance(v, str):
        return "'" + v.replace("\\", "\\\\").replace("'", "\\'") + "'" if nested else v
    if isinstance(v, bool):
        return "1" if v else "0"
    if isinstance(v, datetime.datetime):
        return v.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(v, (list, tuple)):
        return "[" + ",".join(_text(x, True) for x in v) + "]"
    return str(v)


def _json(v: Any) -> Any:
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    if isinstance(v, (list, tuple)):
        return [_json(x) for x in v]
    if isinstance(v, (datetime.date, datetime.datetime)):
        return _text(v)
    if isinstance(v, float) and v != v:
        return None
    return v


def _table(names: Sequence[str], types: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [[("ᴺᵁᴸᴸ" if v is None else _text(v)) for v in r] for r in rows]
    widths = [max([len(n), *(len(r[i]) for r in cells)]) for i, n in enumerate(names)]
    numeric = [t.replace("Nullable(", "").startswith(("UInt", "Int", "Float", "Decimal", "DateTime")) for t in types]

    def pad(s: str, i: int) -> str:
        return s.rjust(widths[i]) if numeric[i] else s.ljust(widths[i])

    head = "┌─" + "─┬─".join((n.rjust(w, "─") if num else n.ljust(w, "─"))
                            for n, w, num in zip(names, widths, numeric)) + "─┐"
    body = ["│ " + " │ ".join(pad(c, i) for i, c in enumerate(r)) + " │" for r in cells]
    foot = "└─" + "─┴─".join("─" * w for w in widths) + "─┘"
    return "\n".join([head, *body, foot]) + "\n"


def format_rows(names: Sequence[str], types: Sequence[str], rows: Sequence[Sequence[Any]], fmt: OutputFormat) -> bytes:
    if fmt == "json":
        doc = {"meta": [{"name": n, "type": t} for n, t in zip(names, types)],
               "data": [{n: _json(v) for n, v in zip(names, r)} for r in rows], "rows": len(rows)}
        return (json.dumps(doc, indent=1, ensure_ascii=False) + "\n").encode()
    if fmt == "csv":
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n", quoting=csv.QUOTE_NONNUMERIC)
        w.writerow(names)
        for r in rows:
            w.writerow([v if isinstance(v, (int, float)) and not isinstance(v, bool) else
                        ("\\N" if v is None else _text(v)) for v in r])
        return buf.getvalue().encode()
    if fmt == "tsv":
        def esc(s: str) -> str:
            return s.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")
        lines = ["\t".join(esc(n) for n in names)]
        lines += ["\t".join(("\\N" if v is None else esc(_text(v))) for v in r) for r in rows]
        return ("\n".join(lines) + "\n").encode()
    if not names:
        return b""
    return _table(names, types, rows).encode()
