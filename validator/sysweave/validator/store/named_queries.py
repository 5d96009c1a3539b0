"""Named queries shipped with ``sysweave query`` (``--list`` shows them; ``--name N`` runs one).

Every query runs unchanged on Debian's ClickHouse 18.16 server and on chdb (current ClickHouse):
``tests/store/test_named_queries.py`` runs each on both. What that rules out on 18.16: ``JSONExtract*``
(use ``visitParamExtractString``: args keep text values as plain JSON strings), more than one JOIN per query,
``ORDER BY``/``LIMIT`` after a ``UNION ALL`` (binds to the last SELECT there: wrap the union in a subquery).
Tables written with redelivery use ``FINAL`` so a row written twice counts once.
"""

from __future__ import annotations

from typing import Final

__all__ = ["NAMED_QUERIES"]

_WALL = "toDateTime(intDiv({col}, 1000000000))"

NAMED_QUERIES: Final[dict[str, tuple[str, str]]] = {
    "traces": ("the latest traces, with their labels (use an id or a label with sysweave export)",
               "SELECT trace_id, label, backend, exit_code, processes, events, lost_events, "
               f"{_WALL.format(col='start_wall_ns')} AS started, arrayStringConcat(hosts, ',') AS hosts "
               "FROM traces FINAL ORDER BY start_wall_ns DESC LIMIT 20"),
    "slowest-syscalls": ("syscalls with the most total time over all stored traces (exact aggregates)",
                         "SELECT name, sum(calls) AS n_calls, sum(errors) AS n_errors, sum(total_ns) AS time_ns, "
                         "round(time_ns / n_calls) AS mean_ns FROM syscall_aggregates FINAL "
                         "GROUP BY name ORDER BY time_ns DESC LIMIT 20"),
    "latency-quantiles": ("per host, day and syscall: exact calls and errors, p50/p99 from the log2 histograms "
                          "(within a factor of sqrt 2)",
                          "SELECT host_id, day, name, sumMerge(calls) AS n_calls, sumMerge(errors) AS n_errors, "
                          "sumForEachMerge(hist_log2) AS h, arraySum(h) AS total, "
                          "round(pow(2, arrayFirstIndex(x -> x >= 0.5 * total, arrayCumSum(h)) - 0.5)) AS p50_ns, "
                          "round(pow(2, arrayFirstIndex(x -> x >= 0.99 * total, arrayCumSum(h)) - 0.5)) AS p99_ns "
                          "FROM syscall_latency_daily GROUP BY host_id, day, name ORDER BY day DESC, n_calls DESC LIMIT 50"),
    "failing-calls": ("the most frequent failing calls and their paths",
                      "SELECT name, ret, visitParamExtractString(args, 'path') AS path, count() AS n FROM syscall_spans FINAL "
                      "WHERE ret < 0 AND ret > -4096 GROUP BY name, ret, path ORDER BY n DESC LIMIT 20"),
    "regressions": ("per syscall, the change in mean latency between the two latest traces",
                    "WITH (SELECT groupArray(trace_id) FROM (SELECT trace_id FROM traces FINAL "
                    "ORDER BY start_wall_ns DESC LIMIT 2)) AS ids "
                    "SELECT name, "
                    "sumIf(total_ns, trace_id = ids[2]) / greatest(sumIf(calls, trace_id = ids[2]), 1) AS before_ns, "
                    "sumIf(total_ns, trace_id = ids[1]) / greatest(sumIf(calls, trace_id = ids[1]), 1) AS after_ns, "
                    "after_ns - before_ns AS delta_ns FROM syscall_aggregates FINAL WHERE has(ids, trace_id) "
                    "GROUP BY name ORDER BY abs(delta_ns) DESC LIMIT 20"),
    "validation-history": ("the latest validation verdicts",
                           f"SELECT {_WALL.format(col='created_wall_ns')} AS at, verdict, confidence, "
                           "original_cmd, transpiled_cmd, explanation, speedup FROM validation_results FINAL "
                           "ORDER BY created_wall_ns DESC LIMIT 20"),
    # GPU events have two sides (the CPU-side driver call, "api", and the device-side execution from CUPTI):
    # grouped apart, so a kernel's launch time and its run time are never summed together
    "gpu-hotspots": ("GPU kernels, copies (device side and driver-call side apart) and compute blocks with the "
                     "most total time",
                     "SELECT what, name, n, total_ns FROM ("
                     "SELECT concat('kernel ', if(side = '', 'device', side)) AS what, name, count() AS n, "
                     "sum(duration_ns) AS total_ns FROM gpu_kernels FINAL GROUP BY what, name "
                     "UNION ALL SELECT concat('copy ', if(side = '', 'device', side)) AS what, "
                     "multiIf(kind = 1, 'HtoD', kind = 2, 'DtoH', kind = 3, 'DtoD', kind = 4, 'HtoH', kind = 5, 'peer', "
                     "'default') AS name, count() AS n, sum(duration_ns) AS total_ns FROM gpu_transfers FINAL "
                     "GROUP BY what, name "
                     "UNION ALL SELECT 'compute' AS what, name, count() AS n, sum(duration_ns) AS total_ns "
                     "FROM compute_blocks FINAL GROUP BY name) ORDER BY total_ns DESC LIMIT 20"),
    "function-hotspots": ("probed functions (--uprobe, CUDA driver calls) by total time: exact calls over all "
                          "windows, p50/p99 from the log2 histograms (within a factor of sqrt 2)",
                          "SELECT symbol, library, sum(calls) AS n_calls, sum(total_ns) AS time_ns, "
                          "round(time_ns / n_calls) AS mean_ns, sumForEach(hist_log2) AS h, arraySum(h) AS total, "
                          "round(pow(2, arrayFirstIndex(x -> x >= 0.5 * total, arrayCumSum(h)) - 0.5)) AS p50_ns, "
                          "round(pow(2, arrayFirstIndex(x -> x >= 0.99 * total, arrayCumSum(h)) - 0.5)) AS p99_ns "
                          "FROM function_aggregates FINAL GROUP BY symbol, library ORDER BY time_ns DESC LIMIT 20"),
    "gpu-samples": ("NVML readings per trace and GPU: samples, mean and peak utilisation, peak memory and power",
                    "SELECT trace_id, device, count() AS samples, round(avg(gpu_util_pct)) AS mean_util_pct, "
                    "max(gpu_util_pct) AS peak_util_pct, max(memory_used_bytes) AS peak_memory_bytes, "
                    "max(power_mw) AS peak_power_mw FROM gpu_samples FINAL WHERE process_pid = 0 "
                    "GROUP BY trace_id, device ORDER BY trace_id, device LIMIT 50"),
    "lost-events": ("what capture or shipping lost, by trace, host and source (counted, never silent)",
                    "SELECT trace_id, host_id, source, sum(count) AS lost, any(detail) AS detail FROM lost_events FINAL "
                    "GROUP BY trace_id, host_id, source ORDER BY lost DESC LIMIT 20"),
    "hosts": ("the hosts traces ran on: name, kernel, architecture, addresses, clock offset against the reference",
              "SELECT h.trace_id AS trace_id, h.host_id AS host_id, hostname, kernel, arch, "
              "arrayStringConcat(addresses, ',') AS addresses, c.offset_ns AS offset_ns, c.bound_ns AS bound_ns "
              "FROM hosts AS h FINAL ANY LEFT JOIN (SELECT trace_id, host AS host_id, offset_ns, bound_ns "
              "FROM clock_estimates FINAL) AS c USING (trace_id, host_id) ORDER BY h.wall_ns DESC LIMIT 50"),
    # a block links to the decision it names (decision_id) or else to the decisions naming its symbol, within one
    # trace: one key per link, so one JOIN (arrayJoin gives each decision both of its keys)
    "decision-blocks": ("which transpiler decisions produced the slowest compute blocks (linked by decision id or "
                        "symbol, within each trace)",
                        "SELECT decision_id, kind, chosen, target_symbol, source_location, reason, sum(n) AS blocks, "
                        "sum(total) AS total_ns, max(longest) AS max_ns, round(total_ns / blocks) AS mean_ns FROM ("
                        "SELECT DISTINCT trace_id, decision_id, kind, chosen, target_symbol, source_location, reason, "
                        "arrayJoin([concat(trace_id, '/id/', decision_id), concat(trace_id, '/sym/', target_symbol)]) AS link "
                        "FROM transpiler_decisions FINAL) AS d ALL INNER JOIN ("
                        "SELECT if(decision_id != '', concat(trace_id, '/id/', decision_id), "
                        "concat(trace_id, '/sym/', symbol)) AS link, count() AS n, sum(duration_ns) AS total, "
                        "max(duration_ns) AS longest FROM compute_blocks FINAL WHERE decision_id != '' OR symbol != '' "
                        "GROUP BY link) AS b USING link "
                        "GROUP BY decision_id, kind, chosen, target_symbol, source_location, reason "
                        "ORDER BY total_ns DESC LIMIT 20"),
    "decision-functions": ("transpiler decisions by the exact time of the uprobed functions they name (all calls, "
                           "not only the slow ones shipped as blocks; within each trace)",
                           "SELECT decision_id, kind, chosen, target_symbol, source_location, sum(c) AS calls, "
                           "sum(t) AS time_ns, round(time_ns / greatest(calls, 1)) AS mean_ns FROM ("
                           "SELECT DISTINCT trace_id, decision_id, kind, chosen, target_symbol, source_location, "
                           "concat(trace_id, '/', target_symbol) AS link FROM transpiler_decisions FINAL "
                           "WHERE target_symbol != '') AS d ALL INNER JOIN ("
                           "SELECT concat(trace_id, '/', symbol) AS link, sum(calls) AS c, sum(total_ns) AS t "
                           "FROM function_aggregates FINAL GROUP BY link) AS f USING link "
                           "GROUP BY decision_id, kind, chosen, target_symbol, source_location "
                           "ORDER BY time_ns DESC LIMIT 20"),
}
