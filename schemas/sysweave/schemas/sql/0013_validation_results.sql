-- One row per validation: verdict, first divergence and the performance comparison (report holds the full JSON).
CREATE TABLE IF NOT EXISTS validation_results (
    validation_id String, created_wall_ns UInt64, original_cmd String, transpiled_cmd String,
    original_trace_id String, transpiled_trace_id String, verdict String, confidence Float64,
    explanation String, speedup Float64, report String, version UInt64
) ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(toDateTime(intDiv(created_wall_ns, 1000000000)))
ORDER BY validation_id
