-- Materialised view: per host, day and syscall, exact call/error counts and total time from the aggregates (query with sumMerge).
CREATE MATERIALIZED VIEW IF NOT EXISTS syscall_latency_daily
ENGINE = AggregatingMergeTree PARTITION BY toYYYYMM(day) ORDER BY (host_id, day, name)
AS SELECT host_id, toDate(toDateTime(intDiv(wall_ns, 1000000000))) AS day, name,
    sumState(calls) AS calls, sumState(errors) AS errors, sumState(total_ns) AS total_ns,
    sumForEachState(hist_log2) AS hist_log2
FROM syscall_aggregates GROUP BY host_id, day, name
