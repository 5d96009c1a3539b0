-- GPU kernel executions (CUPTI activity records).
CREATE TABLE IF NOT EXISTS gpu_kernels (
    trace_id String, event_id FixedString(16), host_id String, pid UInt32, tid UInt32, mono_ns UInt64, wall_ns UInt64, duration_ns UInt64, lamport UInt64, hlc UInt64,
    name String, device UInt32, stream UInt64, grid Array(UInt32), block Array(UInt32), correlation_id UInt64
) ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(toDateTime(intDiv(wall_ns, 1000000000)))
ORDER BY (host_id, device, name, wall_ns, event_id)
