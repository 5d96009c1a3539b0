"""python -m bench [trace] — run the benchmarks (see docs/benchmarks.md for recorded figures)."""

import sys

from bench import trace_overhead

if __name__ == "__main__":
    which = sys.argv[1] if len(sys.argv) > 1 else "trace"
    if which == "trace":
        trace_overhead.main(*[int(a) for a in sys.argv[2:]])
    else:
        sys.exit(f"unknown benchmark {which!r}; known: trace")
