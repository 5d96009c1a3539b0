-- One row per assembled trace (updates replace earlier rows: ReplacingMergeTree on version).
CREATE TABLE IF NOT EXISTS traces (
    trace_id String, label String, root_argv Array(String), start_wall_ns UInt64, end_wall_ns UInt64,
    hosts Array(String), processes UInt32, events UInt64, lost_events UInt64, late_events UInt64,
    exit_code Int32, backend String, closed UInt8, version UInt64
) ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(toDateTime(intDiv(start_wall_ns, 1000000000)))
ORDER BY trace_id
