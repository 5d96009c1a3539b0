-- Materialised view: find a trace by id fast (time range, hosts, span count) from its spans. Recreated over
-- syscall_spans version 2 (0042 dropped it); POPULATE fills it from the spans already stored.
CREATE MATERIALIZED VIEW IF NOT EXISTS trace_index
ENGINE = AggregatingMergeTree ORDER BY trace_id POPULATE
AS SELECT trace_id, minState(wall_ns) AS first_wall_ns, maxState(wall_ns + duration_ns) AS last_wall_ns,
    groupUniqArrayState(host_id) AS hosts, countState() AS spans
FROM syscall_spans GROUP BY trace_id
