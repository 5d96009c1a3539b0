-- Hosts a trace ran on (HostInfo): name, boot id, kernel, architecture, wall-clock anchor and addresses.
CREATE TABLE IF NOT EXISTS hosts (
    trace_id String, event_id FixedString(16), host_id String, pid UInt32, tid UInt32, mono_ns UInt64, wall_ns UInt64, duration_ns UInt64, lamport UInt64, hlc UInt64,
    hostname String, boot_id String, kernel String, arch String, clock_offset_ns Int64, addresses Array(String)
) ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(toDateTime(intDiv(wall_ns, 1000000000)))
ORDER BY (trace_id, host_id, event_id)
