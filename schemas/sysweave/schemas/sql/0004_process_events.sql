-- Process lifecycle: fork/clone, exec with argv, exit with code or signal, wait.
CREATE TABLE IF NOT EXISTS process_events (
    trace_id String, event_id FixedString(16), host_id String, pid UInt32, tid UInt32, mono_ns UInt64, wall_ns UInt64, duration_ns UInt64, lamport UInt64, hlc UInt64,
    type UInt8, parent_pid UInt32, child_pid UInt32, filename String, argv Array(String),
    exit_code Nullable(Int32), signal Nullable(Int32), comm String
) ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(toDateTime(intDiv(wall_ns, 1000000000)))
ORDER BY (trace_id, host_id, pid, wall_ns, event_id)
