-- Returns: one row per side present in this key bucket: side ('a' | 'b'), rows (all its rows), null_rows
--   (rows whose key is NULL), dup_keys (non-NULL keys on more than one row) and dup_rows (rows carrying
--   them): the counts of diff/key_check, for one bucket; the driver sums them over the buckets.
-- Reads: TEMP TABLE kg (from diff/shuffle_key_groups).
-- params: none
SELECT
    side,
    sum(n) AS rows,
    coalesce(sum(n) FILTER (WHERE k IS NULL), 0) AS null_rows,
    count(*) FILTER (WHERE k IS NOT NULL AND n > 1) AS dup_keys,
    coalesce(sum(n) FILTER (WHERE k IS NOT NULL AND n > 1), 0) AS dup_rows
FROM kg
GROUP BY side
ORDER BY side
