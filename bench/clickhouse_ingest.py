"""ClickHouse ingest from one process into the Debian server (issue 5: >= 200,000 spans/s; Jaeger measured
52,000 spans/s on 4 vCPU), and stored bytes per syscall span after compression (target <= 12).

Needs the local server: make services-up. Synthesises N syscall spans of one trace (realistic: a few
processes, a mix of calls, payload-less fast calls as sampling ships them), inserts them in columnar batches
of B rows through ClickHouseSink, then OPTIMIZE ... FINAL and reads system.parts.
"""

from __future__ import annotations

import os
import random
import sys
import time
import uuid

from sysweave.schemas.events import CausalStamp, EventHeader, ProcessSpan, SyscallSpan, UnifiedTrace, make_event_id
from sysweave.validator.store.server import ClickHouseSink

NAMES = [(0, "read"), (1, "write"), (257, "openat"), (3, "close"), (262, "newfstatat"), (9, "mmap"), (202, "futex")]


def synth_trace(n: int) -> UnifiedTrace:
    rng = random.Random(1)
    trace = UnifiedTrace(os.urandom(16))
    t = 1_795_000_000_000_000_000
    for p in range(4):
        span = trace.processes[("host-a", 1000 + p)] = ProcessSpan("host-a", 1000 + p)
        for i in range(n // 4):
            t += rng.randint(200, 5000)
            nr, name = NAMES[rng.randrange(len(NAMES))]
            h = EventHeader(make_event_id(42, p * n + i), "host-a", 1000 + p, 1000 + p, t - 10**18, t,
                            rng.randint(100, 20000), CausalStamp(i, 0))
            span.events.append(SyscallSpan(h, nr, name, rng.choice([0, 8, 4096, -2]), {"fd": 3}, None, 0, 8))
    return trace


def main(n: int = 1_000_000, batch: int = 100_000) -> None:
    db = f"bench_{uuid.uuid4().hex[:6]}"
    sink = ClickHouseSink(f"clickhouse://127.0.0.1:9000/{db}")
    sink.migrate()
    trace = synth_trace(n)
    from sysweave.schemas.rows import trace_rows

    rows = trace_rows(trace)["syscall_spans"]
    t0 = time.perf_counter()
    for i in range(0, len(rows), batch):
        sink.add_rows("syscall_spans", rows[i:i + batch])
        sink.flush()
    elapsed = time.perf_counter() - t0
    sink.execute("OPTIMIZE TABLE syscall_spans FINAL")
    parts = sink.execute(f"SELECT sum(rows), sum(data_compressed_bytes), sum(data_uncompressed_bytes) FROM system.parts "
                         f"WHERE database = '{db}' AND table = 'syscall_spans' AND active")
    stored_rows, comp, uncomp = parts[0]
    print(f"clickhouse ingest: {len(rows):,} spans in {elapsed:.2f} s = {len(rows) / elapsed:,.0f} spans/s "
          f"(columnar batches of {batch:,}, one process)")
    print(f"stored: {comp / stored_rows:.1f} bytes/span compressed ({uncomp / stored_rows:.1f} uncompressed), "
          f"{stored_rows:,} rows")
    sink.execute(f"DROP DATABASE {db}")
    sink.close()


if __name__ == "__main__":
    main(*[int(a) for a in sys.argv[1:]])
