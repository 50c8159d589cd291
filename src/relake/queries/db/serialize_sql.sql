-- Returns: the parse tree of SQL text $sql as JSON (DuckDB's json_serialize_sql: {"error": true, ...} when it
--   does not parse); predicate.check_where vets a rule's `where` by it. Nothing is executed.
-- Reads: nothing.
-- params: $sql
SELECT json_serialize_sql($sql)
