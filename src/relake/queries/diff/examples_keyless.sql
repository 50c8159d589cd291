-- Returns: up to $limit example rows of each change of a keyless diff (a row added or removed, and how many copies
--   of it): change, n, a_r, b_r; ordered by the row's JSON (the rows withheld for a sensitive rule never reach d).
-- Reads: TEMP TABLE d (from diff/keyless).
-- params: $limit
SELECT change, n, a_r, b_r
FROM (SELECT *, row_number() OVER (PARTITION BY change ORDER BY to_json(coalesce(a_r, b_r))) AS i FROM d)
WHERE i <= $limit
ORDER BY change, i
