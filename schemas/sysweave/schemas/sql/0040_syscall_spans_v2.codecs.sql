-- syscall_spans, version 2 (created as syscall_spans_v2, renamed to syscall_spans by 0043). Columns another column
-- derives are ALIAS, not stored: event_id = event_hi ‖ event_lo (big-endian halves), mono_ns = wall_ns - clock_offset_ns
-- (the producer's wall-clock anchor: constant per host, stores to ~0 bytes), hlc = pack(ticks(wall_ns), 0) + hlc_skew
-- (the HLC's distance from the span's own wall clock: 0 or its small logical counter). Integer arithmetic wraps
-- modulo 2^64 in ClickHouse and in rows.py alike, so every value round-trips exactly. Sorted by thread and time
-- so that times, Lamport stamps and sequence numbers are (nearly) arithmetic progressions. ALIAS columns come
-- last: 18.16's DESCRIBE lists them after the stored ones whatever the declaration order.
-- This file: servers with column codecs and LowCardinality (ClickHouse >= 20, chdb): Delta/DoubleDelta for times
-- and counters, T64 for small integers, ZSTD over all, LowCardinality for trace, host and syscall names.
CREATE TABLE IF NOT EXISTS syscall_spans_v2 (
    trace_id LowCardinality(String),
    host_id LowCardinality(String),
    pid UInt32 CODEC(Delta, ZSTD(1)),
    tid UInt32 CODEC(Delta, ZSTD(1)),
    wall_ns UInt64 CODEC(DoubleDelta, ZSTD(1)),
    duration_ns UInt64 CODEC(T64, ZSTD(1)),
    lamport UInt64 CODEC(Delta, ZSTD(1)),
    nr UInt16 CODEC(ZSTD(1)),
    name LowCardinality(String),
    ret Int64 CODEC(T64, ZSTD(1)),
    args String CODEC(ZSTD(3)),
    payload String CODEC(ZSTD(3)),
    payload_len UInt64 CODEC(T64, ZSTD(1)),
    reason UInt8 CODEC(ZSTD(1)),
    event_hi UInt64 CODEC(Delta, ZSTD(1)),
    event_lo UInt64 CODEC(Delta, ZSTD(1)),
    clock_offset_ns UInt64 CODEC(Delta, ZSTD(1)),
    hlc_skew UInt64 CODEC(T64, ZSTD(1)),
    event_id FixedString(16) ALIAS toFixedString(unhex(concat(concat(substring('0000000000000000', 1, 16 - length(hex(event_hi))), hex(event_hi)), concat(substring('0000000000000000', 1, 16 - length(hex(event_lo))), hex(event_lo)))), 16),
    mono_ns UInt64 ALIAS wall_ns - clock_offset_ns,
    hlc UInt64 ALIAS (intDiv(wall_ns, 1953125) * 128 + intDiv((wall_ns % 1953125) * 128, 1953125)) * 65536 + hlc_skew
) ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(toDateTime(intDiv(wall_ns, 1000000000)))
ORDER BY (trace_id, host_id, pid, tid, wall_ns, event_lo, event_hi)
