-- Per-event syscall records that passed sampling. Rows are keyed by event id, so redelivery replaces, never duplicates.
CREATE TABLE IF NOT EXISTS syscall_spans (
    trace_id String, event_id FixedString(16), host_id String, pid UInt32, tid UInt32, mono_ns UInt64, wall_ns UInt64, duration_ns UInt64, lamport UInt64, hlc UInt64,
    nr UInt16, name String, ret Int64, args String, payload String, payload_len UInt64, reason UInt8
) ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(toDateTime(intDiv(wall_ns, 1000000000)))
ORDER BY (host_id, name, wall_ns, event_id)
