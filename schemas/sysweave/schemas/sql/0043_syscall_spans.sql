-- Swap version 2 in under the table's name (18.16 has no EXCHANGE TABLES). Runs only while syscall_spans_v2 exists,
-- so a rerun after an interruption between the swap and its record is a no-op.
-- when-exists: syscall_spans_v2
RENAME TABLE syscall_spans TO syscall_spans_v1, syscall_spans_v2 TO syscall_spans
