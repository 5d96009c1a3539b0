-- Counted losses (ring buffer full, queue overflow, spool overflow): never silent.
CREATE TABLE IF NOT EXISTS lost_events (
    trace_id String, event_id FixedString(16), host_id String, pid UInt32, tid UInt32, mono_ns UInt64, wall_ns UInt64, duration_ns UInt64, lamport UInt64, hlc UInt64,
    source String, count UInt64, detail String
) ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(toDateTime(intDiv(wall_ns, 1000000000)))
ORDER BY (host_id, source, wall_ns, event_id)
