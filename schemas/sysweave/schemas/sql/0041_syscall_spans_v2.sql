-- Copy the spans a store holds in the version-1 table into version 2 (on a new store: nothing). A rerun after an
-- interruption copies again; ReplacingMergeTree collapses the duplicates (reads use FINAL).
INSERT INTO syscall_spans_v2 (trace_id, host_id, pid, tid, wall_ns, duration_ns, lamport, nr, name, ret, args, payload,
    payload_len, reason, event_hi, event_lo, clock_offset_ns, hlc_skew)
SELECT trace_id, host_id, pid, tid, wall_ns, duration_ns, lamport, nr, name, ret, args, payload, payload_len, reason,
    reinterpretAsUInt64(reverse(substring(event_id, 1, 8))), reinterpretAsUInt64(reverse(substring(event_id, 9, 8))), toUInt64(wall_ns - mono_ns), toUInt64(hlc - (intDiv(wall_ns, 1953125) * 128 + intDiv((wall_ns % 1953125) * 128, 1953125)) * 65536)
FROM syscall_spans
