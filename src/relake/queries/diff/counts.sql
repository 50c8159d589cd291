-- Returns: one row per kind of change in TEMP TABLE d: change and rows (sum of n).
-- Reads: TEMP TABLE d (from diff/keyed or diff/keyless).
-- params: none
SELECT change, sum(n) AS rows
FROM d
GROUP BY change
ORDER BY change
