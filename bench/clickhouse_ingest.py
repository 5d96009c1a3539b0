"""ClickHouse ingest from one process into the Debian 18.16 server, counting the row building from the trace
(issue 12: >= 200,000 spans/s from ``UnifiedTrace`` to inserted; Jaeger measured 52,000 spans/s on 4 vCPU), with
the process's resident memory; stored size per span is ``bench/storage_size.py``.

    python -m bench clickhouse [N_SPANS] [RUNS]      # default 1,000,000 spans, 3 runs; needs make services-up

The trace is ``storage_size.realistic_trace`` (built once, outside the timing: capture's work). Each run stores
it into a fresh database with ``ServerStore.store_trace`` — ``columns.iter_trace_columns`` (column-wise: numpy
integer columns, one JSON encoder call per piece for all args) in pieces of 100,000 rows, each a columnar native
INSERT sent by a thread while the next piece is built — and, side by side in the
same run, the former path: ``rows.trace_rows`` (a dict per span) -> ``columns.columnar`` -> insert. Medians.
"s building" for the column path is the same build timed on its own (it overlaps the inserts in store_trace).
RSS: VmRSS sampled every 5 ms during the run (peak) against VmRSS before it (the trace already in memory).
"""

from __future__ import annotations

import statistics
import sys
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from bench.storage_size import realistic_trace
from sysweave.schemas.columns import trace_columns
from sysweave.schemas.events import UnifiedTrace
from sysweave.schemas.rows import trace_rows
from sysweave.validator.store.server import ServerStore


def rss_bytes() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


class PeakRss:
    """Peak VmRSS while the block runs (a sampling thread)."""

    def __enter__(self) -> PeakRss:
        self.before = self.peak = rss_bytes()
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, rss_bytes())

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._t.join()
        self.peak = max(self.peak, rss_bytes())


def _columns_path(store: ServerStore, trace: UnifiedTrace) -> float:
    """ServerStore.store_trace: pieces of 100,000 rows from columns.iter_trace_columns, each inserted by a sender
    thread while the next is built. Returns the seconds spent building alone (measured on the side, untimed)."""
    store.store_trace(trace, "bench")
    return 0.0


def _columns_build(trace: UnifiedTrace) -> float:
    t0 = time.perf_counter()
    trace_columns(trace, "bench", arrays=True)
    return time.perf_counter() - t0


def _rows_path(store: ServerStore, trace: UnifiedTrace) -> float:
    t0 = time.perf_counter()
    tables = trace_rows(trace, "bench")
    build = time.perf_counter() - t0
    for table, rows in tables.items():
        store.insert(table, rows)  # columns.columnar, then the insert
    return build


def run_once(trace: UnifiedTrace, path: Callable[[ServerStore, UnifiedTrace], float],
             url: str) -> tuple[float, float, int, int]:
    """(total s, build s, RSS before, peak RSS) for one store of ``trace`` into a fresh database."""
    db = f"bench_ingest_{uuid.uuid4().hex[:6]}"
    store = ServerStore(f"{url}/{db}")
    store.migrate()
    try:
        with PeakRss() as mem:
            t0 = time.perf_counter()
            build = path(store, trace)
            total = time.perf_counter() - t0
        if path is _columns_path:  # after the timed store, so it neither slows it nor shows in its RSS
            build = _columns_build(trace)
        n = store.execute("SELECT count() FROM syscall_spans")[0][0]
        if n != sum(len(p.events) for p in trace.processes.values()):
            raise RuntimeError(f"stored {n} spans")
        return total, build, mem.before, mem.peak
    finally:
        store._admin.execute(f"DROP DATABASE IF EXISTS {db}")
        store.close()


def main(n: int = 1_000_000, runs: int = 3, *, url: str = "clickhouse://127.0.0.1:9000") -> dict[str, float]:
    trace = realistic_trace(n)
    spans = sum(len(p.events) for p in trace.processes.values())
    results: dict[str, list[tuple[float, float, int, int]]] = {"columns": [], "rows": []}
    for _ in range(runs):  # interleaved, so both paths see the same noise
        results["columns"].append(run_once(trace, _columns_path, url))
        results["rows"].append(run_once(trace, _rows_path, url))
    print(f"ClickHouse 18.16 ingest from UnifiedTrace, {spans:,} realistic syscall spans, one process, "
          f"median of {runs} (each run: build + insert into a fresh database)")
    print("| path | spans/s | s total | s building (of it) | RSS before | peak RSS | added |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    out = {}
    for name, rs in results.items():
        total = statistics.median(r[0] for r in rs)
        build = statistics.median(r[1] for r in rs)
        before = statistics.median(r[2] for r in rs)
        peak = statistics.median(r[3] for r in rs)
        label = ("store_trace: iter_trace_columns(arrays), pieces of 100k inserted while the next builds"
                 if name == "columns" else "before: trace_rows (a dict per span) -> columnar -> insert")
        print(f"| {label} | {spans / total:,.0f} | {total:.2f} | {build:.2f} | "
              f"{before / 2**20:,.0f} MiB | {peak / 2**20:,.0f} MiB | {(peak - before) / 2**20:,.0f} MiB |")
        print(f"|   each run (spans/s) | {', '.join(f'{spans / r[0]:,.0f}' for r in rs)} | | | | | |")
        out[name] = spans / total
    return out


if __name__ == "__main__":
    main(*[int(a) for a in sys.argv[1:]])
