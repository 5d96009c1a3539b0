-- The version-1 table, its rows copied by 0041.
DROP TABLE IF EXISTS syscall_spans_v1
