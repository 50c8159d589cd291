-- Returns: one row per file of A that lost rows: f (index into A's file list, NULL when unknown) and rows.
-- Reads: TEMP TABLE d.
-- params: none
SELECT f, sum(n) AS rows
FROM d
WHERE change = 'removed'
GROUP BY f
ORDER BY rows DESC, f
