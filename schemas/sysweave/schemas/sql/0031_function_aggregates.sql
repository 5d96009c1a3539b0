-- Exact per (process, probed function) statistics from uprobes (FunctionAggregate), including calls below the threshold. hist_log2[i+1] counts durations in [2^i, 2^(i+1)) ns.
CREATE TABLE IF NOT EXISTS function_aggregates (
    trace_id String, event_id FixedString(16), host_id String, pid UInt32, tid UInt32, mono_ns UInt64, wall_ns UInt64, duration_ns UInt64, lamport UInt64, hlc UInt64,
    symbol String, library String, calls UInt64, total_ns UInt64, hist_log2 Array(UInt64), source String
) ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(toDateTime(intDiv(wall_ns, 1000000000)))
ORDER BY (trace_id, host_id, pid, symbol, event_id)
