-- Returns: one row: the rows of each side (a_rows, b_rows), from the bucket counts of diff/keyless_buckets.
-- Reads: TEMP TABLE dg.
-- params: none
SELECT coalesce(sum(na), 0) AS a_rows, coalesce(sum(nb), 0) AS b_rows FROM dg
