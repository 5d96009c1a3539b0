-- SIMD/BLAS compute regions reported by the SDK.
CREATE TABLE IF NOT EXISTS compute_blocks (
    trace_id String, event_id FixedString(16), host_id String, pid UInt32, tid UInt32, mono_ns UInt64, wall_ns UInt64, duration_ns UInt64, lamport UInt64, hlc UInt64,
    name String, kind String, flops UInt64, bytes UInt64
) ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(toDateTime(intDiv(wall_ns, 1000000000)))
ORDER BY (host_id, name, wall_ns, event_id)
