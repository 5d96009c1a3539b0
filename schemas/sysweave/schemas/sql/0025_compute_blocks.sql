-- compute_blocks is rebuilt with the fields of ComputeBlock (op, elements, symbol, source, decision_id, attrs):
-- no producer ever wrote the 0008 layout (name, kind, flops, bytes), and ClickHouse 18.16 has neither
-- ADD COLUMN IF NOT EXISTS nor RENAME COLUMN, so drop-and-create (0026) is the form that stays idempotent.
DROP TABLE IF EXISTS compute_blocks
