"""What sysweave.sdk costs a program: ``python -m bench sdk [N] [REPEATS]`` (figures in docs/benchmarks.md).

* untraced (no SYSWEAVE_SDK_SOCKET): ``with compute_block(...)`` enter+exit, per call, the loop included and net
  of an empty loop; a decorated function against the same function undecorated. Target <= 0.2 µs.
* traced: the same ``with`` sending a datagram to a real receiver (``SdkServer`` in a child process, as under
  ``sysweave trace``), plus ``mark`` and ``transpiler_decision``; how many datagrams the receiver took and how
  many the SDK dropped (counted). Target <= 5 µs.
* the receiver's capacity: datagrams decoded per second by one ``SdkServer`` thread.

Medians of REPEATS runs of N calls each.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

from sysweave import sdk

CPU_ONLY = True
WALL: dict[str, float] = {}  # the same runs by the wall clock (the last measurement of each function)

_RECEIVER = """
import json, sys, time
from sysweave.agents.sdk_server import SdkServer
n = [0]
def sink(e):
    n[0] += 1
srv = SdkServer(sink, "bench", 0).start()
print(srv.path, flush=True)
sys.stdin.readline()
time.sleep(0.3)
t0, c0 = time.process_time(), n[0]
srv.close()
print(json.dumps({"accepted": srv.accepted, "lost": srv.lost}), flush=True)
"""


def _per_call_ns(fn: Callable[[int], None], n: int, repeats: int, burst: int = 0) -> float:
    """Median over ``repeats`` of the calling thread's CPU time per call (on a shared 2-core machine the wall
    clock also counts other processes' turns; ``CPU_ONLY = False`` reports wall time instead). ``burst``: call in
    bursts of that many with a pause between them, so the receiver keeps up (the success path, no drops)."""
    clock = time.perf_counter_ns if not CPU_ONLY else time.thread_time_ns
    runs_wall: list[float] = []
    runs = []
    for _ in range(repeats):
        if not burst:
            w0, t0 = time.perf_counter_ns(), clock()
            fn(n)
            runs.append((clock() - t0) / n)
            runs_wall.append((time.perf_counter_ns() - w0) / n)
            continue
        spent = wall = 0
        for _ in range(n // burst):
            w0, t0 = time.perf_counter_ns(), clock()
            fn(burst)
            spent += clock() - t0
            wall += time.perf_counter_ns() - w0
            time.sleep(burst * 100e-6)  # the receiver takes ~10-20k datagrams/s on this machine
        runs.append(spent / (n // burst * burst))
        runs_wall.append(wall / (n // burst * burst))
    WALL[fn.__name__] = statistics.median(runs_wall)
    return statistics.median(runs)


def _empty(n: int) -> None:
    for _ in range(n):
        pass


def _with_block(n: int) -> None:
    cb = sdk.compute_block
    for i in range(n):
        with cb("gemm", op="gemm", elements=i):
            pass


def _marks(n: int) -> None:
    for i in range(n):
        sdk.mark("step", i=i)


def _decisions(n: int) -> None:
    for _ in range(n):
        sdk.transpiler_decision("D1", "loop-vectorised", "simd x8", target_symbol="f")


def _plain(x: int) -> int:
    return x + 1


def _calls(f: Callable[[int], int]) -> Callable[[int], None]:
    def run(n: int) -> None:
        for i in range(n):
            f(i)
    return run


def main(n: int = 200_000, repeats: int = 7) -> dict[str, float]:
    out: dict[str, float] = {}
    sdk.connect("")
    empty = _per_call_ns(_empty, n, repeats)
    raw = _per_call_ns(_with_block, n, repeats)
    raw_wall, empty_wall = WALL["_with_block"], WALL["_empty"]
    out["untraced_with_ns"] = raw
    out["untraced_with_net_ns"] = raw - empty
    decorated = sdk.compute_block("f", op="add")(_plain)
    out["untraced_decorator_extra_ns"] = _per_call_ns(_calls(decorated), n, repeats) - _per_call_ns(_calls(_plain), n, repeats)
    print(f"({'CPU' if CPU_ONLY else 'wall'} time per call, median of {repeats})")
    print(f"untraced: with compute_block(...) {raw:.0f} ns per enter+exit ({raw - empty:.0f} ns net of the loop; "
          f"wall clock {raw_wall:.0f} / {raw_wall - empty_wall:.0f} ns); "
          f"decorated function: {'the same object' if decorated is _plain else 'wrapped'} "
          f"({out['untraced_decorator_extra_ns']:+.0f} ns)")

    env = {k: v for k, v in os.environ.items() if k != sdk.ENV}
    rx = subprocess.Popen([sys.executable, "-c", _RECEIVER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
    assert rx.stdout is not None and rx.stdin is not None
    path = rx.stdout.readline().strip()
    sdk.connect(path)
    tn = max(n // 20, 1024)
    traced = _per_call_ns(_with_block, tn, repeats, burst=256)
    traced_wall = WALL["_with_block"]
    mark_ns = _per_call_ns(_marks, tn, repeats, burst=256)
    dec_ns = _per_call_ns(_decisions, tn, repeats, burst=256)
    paced = sdk.stats()
    flood = _per_call_ns(_with_block, tn, 1)  # no pauses: the socket's queue fills, the SDK drops and counts
    stats = sdk.stats()
    sdk.connect("")  # reports what is still unreported
    rx.stdin.write("\n")
    rx.stdin.flush()
    got = json.loads(rx.stdout.readline())
    rx.wait(30)
    sdk.connect("")
    out.update(traced_with_wall_ns=traced_wall, untraced_with_wall_ns=raw_wall)
    out.update(traced_with_ns=traced, traced_mark_ns=mark_ns, traced_decision_ns=dec_ns, flood_with_ns=flood,
               sent=stats["sent"], dropped=sum(stats["dropped"].values()), accepted=got["accepted"])
    print(f"traced, paced: with compute_block(...) {traced:.0f} ns (wall {traced_wall:.0f}); mark {mark_ns:.0f} ns "
          f"(wall {WALL['_marks']:.0f}); transpiler_decision {dec_ns:.0f} ns (wall {WALL['_decisions']:.0f}) "
          f"({paced['sent']:,} sent, {sum(paced['dropped'].values())} dropped)")
    print(f"traced, flooding {tn:,} blocks back to back: {flood:.0f} ns per block; in all {stats['sent']:,} datagrams "
          f"sent, {sum(stats['dropped'].values()):,} dropped by the SDK ({stats['dropped']}); the receiver took "
          f"{got['accepted']:,} and was told of the drops: {got['lost']}")

    # receiver capacity: one SdkServer thread, datagrams sent as fast as the socket takes them
    from sysweave.agents.sdk_server import SdkServer

    count = [0]

    def sink(_e: object) -> None:
        count[0] += 1

    srv = SdkServer(sink, "bench", 0).start()
    sdk.connect(srv.path)
    t0 = time.perf_counter()
    _with_block(tn)
    deadline = time.monotonic() + 30
    while count[0] < sdk.stats()["sent"] and time.monotonic() < deadline:
        time.sleep(0.01)
    took = time.perf_counter() - t0
    srv.close()
    out["receiver_per_s"] = count[0] / took
    print(f"receiver (same process as the sender, sharing its GIL): {count[0] / took:,.0f} datagrams/s decoded")
    sdk.connect("")
    return out


if __name__ == "__main__":
    main(*[int(a) for a in sys.argv[1:]])
