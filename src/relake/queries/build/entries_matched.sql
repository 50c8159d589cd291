-- Returns: how many distinct entries of rule $rule's blocklist matched at least one base row.
-- Reads: table matches.
-- params: $rule
SELECT count(DISTINCT entry) FROM matches WHERE rule = $rule
