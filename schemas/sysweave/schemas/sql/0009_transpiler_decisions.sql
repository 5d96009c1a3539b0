-- Decisions a transpiler took, reported through the SDK.
CREATE TABLE IF NOT EXISTS transpiler_decisions (
    trace_id String, event_id FixedString(16), host_id String, pid UInt32, tid UInt32, mono_ns UInt64, wall_ns UInt64, duration_ns UInt64, lamport UInt64, hlc UInt64,
    source_location String, decision String, rationale String, target String
) ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(toDateTime(intDiv(wall_ns, 1000000000)))
ORDER BY (trace_id, wall_ns, event_id)
