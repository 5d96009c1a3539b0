-- One row per process of a trace.
CREATE TABLE IF NOT EXISTS processes (
    trace_id String, host_id String, pid UInt32, parent_host_id String, parent_pid UInt32,
    argv Array(String), start_wall_ns UInt64, end_wall_ns UInt64, exit_code Nullable(Int32),
    signal Nullable(Int32), version UInt64
) ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(toDateTime(intDiv(start_wall_ns, 1000000000)))
ORDER BY (trace_id, host_id, pid)
