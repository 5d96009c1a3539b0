-- GPU memory transfers; kind 1=HtoD 2=DtoH 3=DtoD 4=HtoH 5=peer.
CREATE TABLE IF NOT EXISTS gpu_transfers (
    trace_id String, event_id FixedString(16), host_id String, pid UInt32, tid UInt32, mono_ns UInt64, wall_ns UInt64, duration_ns UInt64, lamport UInt64, hlc UInt64,
    kind UInt8, bytes UInt64, device UInt32, stream UInt64, correlation_id UInt64
) ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(toDateTime(intDiv(wall_ns, 1000000000)))
ORDER BY (host_id, device, wall_ns, event_id)
