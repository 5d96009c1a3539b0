-- Final state of every path a traced tree wrote (FileState), recorded when the tree exits: validation by effects.
CREATE TABLE IF NOT EXISTS file_states (
    trace_id String, event_id FixedString(16), host_id String, pid UInt32, tid UInt32, mono_ns UInt64, wall_ns UInt64, duration_ns UInt64, lamport UInt64, hlc UInt64,
    path String, exists UInt8, type String, mode UInt32, size UInt64, content_hash String, content String, target String, cwd String
) ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(toDateTime(intDiv(wall_ns, 1000000000)))
ORDER BY (trace_id, host_id, path, event_id)
