-- Returns: one row per side ('a', 'b') of one key bucket: side, rows (all its rows), null_rows (rows whose key
--   is NULL), dup_keys (non-NULL keys on more than one row) and dup_rows (rows carrying them): the counts of
--   diff/key_check for one bucket; the driver sums them over the buckets.
-- Reads: TEMP TABLE kg (from diff/shuffle_key_groups).
-- params: none
SELECT
    s.side,
    coalesce(sum(n), 0) AS rows,
    coalesce(sum(n) FILTER (WHERE k IS NULL), 0) AS null_rows,
    count(*) FILTER (WHERE k IS NOT NULL AND n > 1) AS dup_keys,
    coalesce(sum(n) FILTER (WHERE k IS NOT NULL AND n > 1), 0) AS dup_rows
FROM (VALUES ('a'), ('b')) AS s(side)
LEFT JOIN (
    SELECT 'a' AS side, ka AS k, na AS n FROM kg WHERE na > 0
    UNION ALL
    SELECT 'b' AS side, kb AS k, nb AS n FROM kg WHERE nb > 0
) AS g ON g.side = s.side
GROUP BY s.side
ORDER BY s.side
