-- transpiler_decisions is rebuilt with the fields of TranspilerDecision (see 0025 for why drop-and-create):
-- no producer ever wrote the 0009 layout.
DROP TABLE IF EXISTS transpiler_decisions
