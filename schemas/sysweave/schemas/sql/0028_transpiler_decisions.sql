-- Decisions a transpiler took: from its build-time log (sysweave trace --decisions, source 'log') or the SDK at
-- run time (source 'sdk'). target_symbol links to compute_blocks.symbol; attrs is JSON text (rows.encode_args).
CREATE TABLE IF NOT EXISTS transpiler_decisions (
    trace_id String, event_id FixedString(16), host_id String, pid UInt32, tid UInt32, mono_ns UInt64, wall_ns UInt64, duration_ns UInt64, lamport UInt64, hlc UInt64,
    decision_id String, source_location String, target_symbol String, kind String, chosen String,
    alternatives Array(String), reason String, source String, attrs String
) ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(toDateTime(intDiv(wall_ns, 1000000000)))
ORDER BY (trace_id, target_symbol, decision_id, event_id)
