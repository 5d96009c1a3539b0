"""python -m bench [all|trace|startup|uprobe|validate|cancel|fuzz|clickhouse|storage|store|streams|sdk|multihost|
demo_stress] (figures: docs/benchmarks.md). demo_stress (make demo-stress: five demos with both cores loaded) is
not part of "all"."""

import sys

from bench import (
    clickhouse_ingest,
    demo_stress,
    fuzz_speed,
    multihost_repeat,
    sdk_cost,
    startup,
    storage_size,
    store_scale,
    stream_throughput,
    trace_overhead,
    uprobe_cost,
    validate_cancel,
    validate_speed,
)

if __name__ == "__main__":
    which = sys.argv[1] if len(sys.argv) > 1 else "all"
    benches = {"trace": trace_overhead.main, "validate": validate_speed.main, "clickhouse": clickhouse_ingest.main,
               "storage": storage_size.main, "store": store_scale.main,
               "streams": stream_throughput.main, "sdk": sdk_cost.main, "startup": startup.main,
               "uprobe": uprobe_cost.main,
               "cancel": validate_cancel.main, "multihost": multihost_repeat.main,
               "fuzz": fuzz_speed.main}
    if which == "demo_stress":
        demo_stress.main(*[int(a) for a in sys.argv[2:]])
    elif which == "all":
        for fn in benches.values():
            fn()
    elif which in benches:
        benches[which](*[int(a) for a in sys.argv[2:]])
    else:
        sys.exit(f"unknown benchmark {which!r}; known: all, {', '.join(benches)}, demo_stress")
