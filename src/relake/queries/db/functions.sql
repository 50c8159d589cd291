-- Returns: every function the connection knows: name, type (scalar, macro, table, aggregate, ...), stability
--   (CONSISTENT, CONSISTENT_WITHIN_QUERY, VOLATILE; NULL for macros and table functions) and whether it is
--   built in; predicate.check_where allows a rule only deterministic ones.
-- Reads: duckdb_functions().
-- params: none
SELECT function_name, function_type, stability, internal FROM duckdb_functions()
