"""python -m bench [all|trace|startup|validate|clickhouse|storage|streams|sdk] — the benchmarks (figures: docs/benchmarks.md)."""

import sys

from bench import clickhouse_ingest, sdk_cost, startup, storage_size, stream_throughput, trace_overhead, validate_speed

if __name__ == "__main__":
    which = sys.argv[1] if len(sys.argv) > 1 else "all"
    benches = {"trace": trace_overhead.main, "validate": validate_speed.main, "clickhouse": clickhouse_ingest.main,
               "storage": storage_size.main,
               "streams": stream_throughput.main, "sdk": sdk_cost.main, "startup": startup.main}
    if which == "all":
        for fn in benches.values():
            fn()
    elif which in benches:
        benches[which](*[int(a) for a in sys.argv[2:]])
    else:
        sys.exit(f"unknown benchmark {which!r}; known: all, {', '.join(benches)}")
