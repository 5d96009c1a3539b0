-- Instants a program marked itself (SDK mark(name, **attrs)); attrs is JSON text (rows.encode_args).
CREATE TABLE IF NOT EXISTS marks (
    trace_id String, event_id FixedString(16), host_id String, pid UInt32, tid UInt32, mono_ns UInt64, wall_ns UInt64, duration_ns UInt64, lamport UInt64, hlc UInt64,
    name String, attrs String
) ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(toDateTime(intDiv(wall_ns, 1000000000)))
ORDER BY (trace_id, wall_ns, event_id)
