-- trace_index reads syscall_spans: dropped before the table is swapped (0043) and recreated over version 2 (0045).
DROP TABLE IF EXISTS trace_index
