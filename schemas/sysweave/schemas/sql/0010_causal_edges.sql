-- Happens-before edges; kind 1=fork 2=exit-wait 3=pipe 4=tcp 5=exec 6=sdk.
CREATE TABLE IF NOT EXISTS causal_edges (
    trace_id String, event_id FixedString(16), host_id String, pid UInt32, tid UInt32, mono_ns UInt64, wall_ns UInt64, duration_ns UInt64, lamport UInt64, hlc UInt64,
    src FixedString(16), dst FixedString(16), kind UInt8, detail String
) ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(toDateTime(intDiv(wall_ns, 1000000000)))
ORDER BY (trace_id, src, dst)
