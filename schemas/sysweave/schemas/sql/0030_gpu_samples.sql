-- NVML readings (GpuSample): per GPU (process_pid = 0) and per traced process on it; NULL = NVML could not say.
CREATE TABLE IF NOT EXISTS gpu_samples (
    trace_id String, event_id FixedString(16), host_id String, pid UInt32, tid UInt32, mono_ns UInt64, wall_ns UInt64, duration_ns UInt64, lamport UInt64, hlc UInt64,
    device UInt32, process_pid UInt32, name String, gpu_util_pct Nullable(UInt32), mem_util_pct Nullable(UInt32), memory_used_bytes Nullable(UInt64), memory_total_bytes Nullable(UInt64), power_mw Nullable(UInt64), sm_clock_mhz Nullable(UInt32)
) ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(toDateTime(intDiv(wall_ns, 1000000000)))
ORDER BY (trace_id, host_id, device, process_pid, mono_ns, event_id)
