"""A prototype floor, not the worker: what the stream worker's pure path would cost per span if no per-span
objects were built (issue 18 item 5). The benchmark's shape (one process, reads on fd 3, exec and exit) through
msgpack rows and columns only — unpack, per-column exact-type checks of the syscall rows, dedup by event id,
order by (mono_ns, event_id), Lamport + HLC along program order (no edges), output rows = input rows with
their two stamps patched, one ``packb`` per trace — alternated in one process with ``stream_pure.run`` (the
object path every worker runs). It omits host infos, the join, process spans and fd tracking (no stream in
this shape), so it is a lower bound for a columnar pipeline, not a measurement of one. Prints CPU seconds per
100,000 spans, medians of 5 each.

    python -m bench.stream_columnar_floor
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable
from itertools import chain
from operator import itemgetter
from typing import Any

import msgpack

from bench.stream_pure import batches, run
from sysweave.schemas import codec
from sysweave.schemas.clocks import HLC_LOGICAL_BITS, HLC_TICKS_PER_S

__all__ = ["run_rows"]

_ID, _MONO = itemgetter(1), itemgetter(5)
_SCALARS = frozenset({int, str, bytes, bool, type(None)})


def _only(column: tuple[Any, ...], t: type) -> bool:
    return set(map(type, column)) == {t}


def _checked(rows: list[list[Any]]) -> None:
    """The syscall rows' columns checked as ``wirecols`` checks them (the bench sends nothing else in bulk)."""
    cols = list(zip(*[r for r in rows if r[0] == 1]))
    ok = (_only(cols[1], bytes) and set(map(len, cols[1])) == {16} and _only(cols[2], str)
          and set(map(type, chain.from_iterable(cols[3:10]))) == {int} and _only(cols[11], str)
          and _only(cols[12], int) and _only(cols[13], dict)
          and set(map(type, chain.from_iterable(map(dict.values, cols[13])))) <= _SCALARS)
    if not ok:
        raise codec.DecodeError("prototype: a row the benchmark does not send")


def run_rows(pre: list[list[bytes]]) -> None:
    """Every trace of ``pre`` (its batches) through rows and columns only."""
    for n, trace in enumerate(pre):
        held: dict[bytes, list[Any]] = {}
        for b in trace:
            rows = msgpack.unpackb(b, raw=False, strict_map_key=True, max_str_len=codec.MAX_STR,
                                   max_bin_len=codec.MAX_BYTES, max_array_len=codec.MAX_EVENTS_PER_BATCH,
                                   max_map_len=codec.MAX_MAP, max_ext_len=0)[4]
            _checked(rows)
            held.update(zip(map(_ID, rows), rows))
        kept = list(held.values())
        ordered = [r for _, _, r in sorted(zip(map(_MONO, kept), map(_ID, kept), kept))]
        prev_l, prev_h = -(1 << 64) - 1, -1
        for r in ordered:
            lam = r[8] if r[8] > prev_l else prev_l + 1
            wall = r[6]
            pt = ((wall if wall > 0 else 0) * HLC_TICKS_PER_S // 1_000_000_000) << HLC_LOGICAL_BITS
            hlc = pt if pt > prev_h else prev_h + 1
            r[8], r[9] = lam, hlc
            prev_l, prev_h = lam, hlc
        msgpack.packb([codec.SCHEMA_VERSION, n, 0, 0, ordered], use_bin_type=True)


def main(n_spans: int = 200_000, n_traces: int = 10) -> None:
    pre = [batches(t, n_spans // n_traces) for t in range(n_traces)]
    gc.freeze()  # as the worker does
    gc.set_threshold(50_000, 50, 100)
    paths: dict[str, Callable[[list[list[bytes]]], None]] = {"objects (stream_pure.run)": run,
                                                              "rows and columns, no objects": run_rows}
    cpu: dict[str, list[float]] = {name: [] for name in paths}
    for _ in range(5):
        for name, path in paths.items():
            t0 = time.process_time()
            path(pre)
            cpu[name].append((time.process_time() - t0) / n_spans * 100_000)
    for name, xs in cpu.items():
        print(f"{name}: {statistics.median(xs):.3f} CPU s per 100k spans ({min(xs):.3f}-{max(xs):.3f})")


if __name__ == "__main__":
    main()
