-- Returns: nothing; inserts rows of the base for which the rule's predicate is true (NULL counts as false).
--   The slot below takes predicate.select_text(where): `SELECT (<where>) AS relake_p, filename,
--   file_row_number FROM base`, the very text predicate.check_where parsed and vetted (one deterministic boolean
--   expression over the base's columns and bound $params). This is the only query with a slot, and the slot
--   takes vetted code, never a value.
-- Reads: view base (the base's columns plus filename, file_row_number).
-- params: $rule
INSERT INTO matches
SELECT p.filename, p.file_row_number, $rule, 'predicate', NULL
FROM (/*PREDICATE*/ SELECT FALSE AS relake_p, filename, file_row_number FROM base) AS p
WHERE coalesce(p.relake_p, FALSE)
