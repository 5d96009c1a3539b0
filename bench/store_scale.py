"""The default path with the embedded store on, at any store size (issue 15 item 4). ``python -m bench store [N]``

Builds a store of >= 1,000 traces and >= 5 M syscall spans through the real write path (``EmbeddedStore.store_trace``
of synthetic traces: 5,000 spans each, 80 % sampled-out-style short calls, args on every span, payloads on a
tenth), merges it (``store compact``, timed), then adds a few ordinary parts as commands would leave them. Then,
side by side in one run, alternating, N runs each (default 5), medians:

* ``sysweave trace -c -- true``: store on (the default) vs ``--no-store``, on an empty and on the big store;
* ``sysweave validate --original '/bin/echo hi' --transpiled '/bin/echo hi'``: store on (report + both traces)
  vs ``--no-store``;
* ``sysweave query "SELECT 1"`` and the named queries ``traces`` and ``slowest-syscalls``, empty vs big store;
* storing one 5,000-span trace in-process, empty vs big store (a write costs its own size, not the history's).

Targets (store on, big store): trace <= 0.5 s, validate <= 0.6 s, SELECT 1 <= 0.5 s. Commands run as users run
them (the ``sysweave`` entry point, the machine's bpffs as it is); the first trace of the run is a warm-up.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sysweave.schemas.events import CausalStamp, EventHeader, ProcessSpan, SyscallSpan, UnifiedTrace
from sysweave.validator.store.compact import compact, info
from sysweave.validator.store.embedded import EmbeddedStore

__all__ = ["build_store", "main", "synthetic_trace"]

BIN = Path(sys.executable).parent / "sysweave"
SPANS_PER_TRACE = 5_000
TRACES = 1_000
NAMES = ("read", "write", "openat", "close", "mmap", "futex", "newfstatat", "epoll_wait")


def synthetic_trace(seq: int, spans: int = SPANS_PER_TRACE, processes: int = 4) -> UnifiedTrace:
    """A trace like a small job's: ``processes`` processes, ``spans`` syscall spans, distinct event ids."""
    tr = UnifiedTrace(os.urandom(16), closed=True, label=f"bench job {seq % 50}")
    t0 = 1_795_000_000_000_000_000 + seq * 10**9
    per = spans // processes
    for p in range(processes):
        pid = 1000 + p
        span = ProcessSpan("bench-host", pid, None if p == 0 else ("bench-host", 1000), ("python3", f"job{p}.py"),
                           t0, t0 + 10**8, 0, None)
        for i in range(per):
            n = p * per + i
            h = EventHeader(((seq << 32) + n).to_bytes(16, "big"), "bench-host", pid, pid, 5_000 + n * 1_000,
                            t0 + n * 1_000, 200 + n % 50, CausalStamp(n, 0))
            name = NAMES[n % len(NAMES)]
            payload = b"x" * 64 if n % 10 == 0 else None
            span.events.append(SyscallSpan(h, 0, name, 64 if payload else 0, {"fd": n % 16, "count": 64}, payload,
                                           64 if payload else 0, 1))
        tr.processes[("bench-host", pid)] = span
    return tr


def build_store(path: Path, traces: int = TRACES) -> dict[str, float]:
    """Fill ``path`` with ``traces`` synthetic traces, merge them, add 8 ordinary parts; returns timings (s)."""
    os.environ["SYSWEAVE_COMPACT_AT"] = "0"  # merged once, below, in the foreground (timed)
    store = EmbeddedStore(path)
    t0 = time.perf_counter()
    for seq in range(traces):
        store.store_trace(synthetic_trace(seq), backend="ebpf")
    t1 = time.perf_counter()
    result = compact(store.layout)
    t2 = time.perf_counter()
    for seq in range(traces, traces + 8):
        store.store_trace(synthetic_trace(seq, spans=200), backend="ebpf")
    del os.environ["SYSWEAVE_COMPACT_AT"]
    return {"write_s": t1 - t0, "compact_s": t2 - t1, "bytes_in": float(result.bytes_in if result else 0)}


def _run(argv: list[str], store: Path) -> float:
    env = {**os.environ, "SYSWEAVE_STORE": str(store)}
    t0 = time.perf_counter()
    r = subprocess.run(argv, env=env, capture_output=True, timeout=300)
    took = time.perf_counter() - t0
    if r.returncode not in (0, 1):
        raise RuntimeError(f"{' '.join(argv)}: exit {r.returncode}: {r.stderr.decode()[-500:]}")
    return took


def _commands() -> dict[str, list[str]]:
    sw = [str(BIN)] if BIN.exists() else [sys.executable, "-m", "sysweave.cli.main"]
    val = [*sw, "validate", "--original", "/bin/echo hi", "--transpiled", "/bin/echo hi"]
    return {"trace -c -- true": [*sw, "trace", "-c", "--", "true"],
            "trace -c --no-store -- true": [*sw, "trace", "-c", "--no-store", "--", "true"],
            "validate echo/echo": val, "validate echo/echo --no-store": [*val, "--no-store"],
            'query "SELECT 1"': [*sw, "query", "SELECT 1"],
            "query --name traces": [*sw, "query", "--name", "traces"],
            "query --name slowest-syscalls": [*sw, "query", "--name", "slowest-syscalls"]}


def _write_once(store: Path) -> float:
    s = EmbeddedStore(store)
    tr = synthetic_trace(10**6)
    os.environ["SYSWEAVE_COMPACT_AT"] = "0"
    t0 = time.perf_counter()
    s.store_trace(tr)
    took = time.perf_counter() - t0
    del os.environ["SYSWEAVE_COMPACT_AT"]
    return took


def main(runs: int = 5) -> None:
    with tempfile.TemporaryDirectory(prefix="sysweave-store-bench-") as d:
        empty, big = Path(d) / "empty", Path(d) / "big"
        EmbeddedStore(empty)
        built = build_store(big)
        size = info(EmbeddedStore(big).layout)
        print(f"big store: {size.traces:,} traces, {size.spans:,} spans, {size.parts} parts ({size.merged_parts} merged), "
              f"{size.bytes / 1e6:.0f} MB; written in {built['write_s']:.0f} s ({built['bytes_in'] / 1e6:.0f} MB of "
              f"Native parts), merged in {built['compact_s']:.0f} s")
        cmds = _commands()
        _run(cmds["trace -c -- true"], empty)  # warm-up: the BPF program cache, page cache
        samples: dict[tuple[str, str], list[float]] = {}
        for _ in range(runs):
            for name, argv in cmds.items():
                for label, where in (("empty", empty), ("big", big)):
                    samples.setdefault((name, label), []).append(_run(argv, where))
            for label, where in (("empty", empty), ("big", big)):
                samples.setdefault(("store one 5,000-span trace (in-process)", label), []).append(_write_once(where))
        load = os.getloadavg()
        print(f"medians of {runs}, load {load[0]:.1f}/{load[1]:.1f}/{load[2]:.1f}")
        print("| command | empty store (s) | big store (s) | big / empty |")
        print("|---|---|---|---|")
        for name in [*cmds, "store one 5,000-span trace (in-process)"]:
            e, b = statistics.median(samples[(name, "empty")]), statistics.median(samples[(name, "big")])
            print(f"| {name} | {e:.3f} | {b:.3f} | {b / e:.2f} |")
        for on, off in (("trace -c -- true", "trace -c --no-store -- true"),
                        ("validate echo/echo", "validate echo/echo --no-store")):
            b_on, b_off = statistics.median(samples[(on, "big")]), statistics.median(samples[(off, "big")])
            print(f"store on / --no-store, big store, {on}: {b_on:.3f} / {b_off:.3f} = {b_on / b_off:.2f}")


if __name__ == "__main__":
    main(*[int(a) for a in sys.argv[1:]])
