-- Returns: nothing; inserts rows of the base for which the rule's predicate is true. The predicate (SQL
--   code from the reviewed spec, parsed as one expression first) replaces the marker below; its values are
--   bound as $params. This is the only query with a slot, and the slot takes code, never a value.
-- Reads: view base (the base's columns plus filename, file_row_number).
-- params: $rule
INSERT INTO matches
SELECT filename, file_row_number, $rule, 'predicate', NULL
FROM base
WHERE coalesce((/*PREDICATE*/ FALSE), FALSE)
