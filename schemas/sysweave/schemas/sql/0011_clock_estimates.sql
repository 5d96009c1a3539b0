-- Per-host clock offset against the trace's reference host: true = observed - offset_ns (+- bound_ns).
CREATE TABLE IF NOT EXISTS clock_estimates (
    trace_id String, event_id FixedString(16), host_id String, pid UInt32, tid UInt32, mono_ns UInt64, wall_ns UInt64, duration_ns UInt64, lamport UInt64, hlc UInt64,
    host String, reference String, offset_ns Int64, bound_ns Int64, drift_ppb Int64, samples UInt64
) ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(toDateTime(intDiv(wall_ns, 1000000000)))
ORDER BY (trace_id, host, event_id)
