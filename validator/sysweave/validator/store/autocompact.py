"""After each write to the embedded store: retention now for whole parts, and a merge in the background once
enough parts wait. Kept apart from ``compact`` (which needs chdb) so that a write imports only the standard
library: ``sysweave trace`` pays no start-up for it.

Settings: ``$SYSWEAVE_RETENTION_DAYS`` (traces older than that many days are removed; unset or 0: kept) and
``$SYSWEAVE_COMPACT_AT`` (unmerged parts from which a write starts ``python -m
sysweave.validator.store.compact STORE``, detached and niced; default ``AUTO_COMPACT_PARTS``; 0: never).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterable

from sysweave.validator.store.base import StoreError
from sysweave.validator.store.parts import Part, StoreLayout

__all__ = ["AUTO_COMPACT_PARTS", "drop_expired_parts", "maybe_compact_in_background", "retention_days"]

AUTO_COMPACT_PARTS = 64


def retention_days() -> float:
    """$SYSWEAVE_RETENTION_DAYS (0 or unset: keep everything)."""
    try:
        return max(float(os.environ.get("SYSWEAVE_RETENTION_DAYS", "0") or 0), 0.0)
    except ValueError:
        raise StoreError(f"SYSWEAVE_RETENTION_DAYS={os.environ['SYSWEAVE_RETENTION_DAYS']!r}: give a number of days") from None


def drop_expired_parts(layout: StoreLayout, parts: Iterable[Part], days: float) -> int:
    """Retention on the write path without chdb: remove unmerged parts whose every trace is older than ``days``
    (merged parts are pruned by the next compaction). Returns the parts removed."""
    cutoff = time.time_ns() - int(days * 86_400 * 10**9)
    old = [p for p in parts if not p.manifest.merged and p.manifest.traces
           and all(t.start_wall_ns < cutoff for t in p.manifest.traces)]
    layout.remove(old)
    return len(old)


def maybe_compact_in_background(layout: StoreLayout, days: float | None = None) -> bool:
    """After a write: apply the retention (``days``, else $SYSWEAVE_RETENTION_DAYS) to whole unmerged parts now, and
    start a detached, low-priority ``compact`` once enough unmerged parts wait. True when one was started."""
    names = os.listdir(layout.parts)
    days = retention_days() if days is None else days
    if days:
        drop_expired_parts(layout, layout.list_parts(), days)
    try:
        threshold = int(os.environ.get("SYSWEAVE_COMPACT_AT", AUTO_COMPACT_PARTS))
    except ValueError:
        threshold = AUTO_COMPACT_PARTS
    unmerged = sum(1 for n in names if "-merged-" not in n)
    if threshold <= 0 or unmerged < threshold:
        return False
    with open(layout.root / "compact.log", "ab") as log:
        subprocess.Popen([sys.executable, "-m", "sysweave.validator.store.compact", str(layout.root), str(days)],
                         stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
                         preexec_fn=lambda: os.nice(10))
    return True


