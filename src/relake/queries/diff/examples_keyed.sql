-- Returns: up to $limit example rows of each change of a keyed diff, by key: k, change, changed_columns, a_r, b_r
--   (the rows withheld for a sensitive rule never reach TEMP TABLE d).
-- Reads: TEMP TABLE d (from diff/keyed).
-- params: $limit
SELECT k, change, changed_columns, a_r, b_r
FROM (SELECT *, row_number() OVER (PARTITION BY change ORDER BY k) AS i FROM d)
WHERE i <= $limit
ORDER BY change, k
