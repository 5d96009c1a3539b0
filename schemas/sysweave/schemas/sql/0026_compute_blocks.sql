-- Compute regions: SDK compute_block() and uprobed functions. symbol links a block to the TranspilerDecision whose
-- target_symbol names it (decision_id, when the reporter knows the decision); attrs is JSON text (rows.encode_args).
CREATE TABLE IF NOT EXISTS compute_blocks (
    trace_id String, event_id FixedString(16), host_id String, pid UInt32, tid UInt32, mono_ns UInt64, wall_ns UInt64, duration_ns UInt64, lamport UInt64, hlc UInt64,
    name String, op String, elements UInt64, symbol String, source String, decision_id String, attrs String
) ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(toDateTime(intDiv(wall_ns, 1000000000)))
ORDER BY (trace_id, symbol, wall_ns, event_id)
