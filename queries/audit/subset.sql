-- Audit (must return zero rows): fingerprint buckets where the kept rows plus the removed rows do not add up
--   to the base (row counts, and the 128-bit hash sums added in Python) — i.e. a row was added or altered.
-- Reads: table fp_check(bucket, base_rows, base_value, sum_rows, sum_value).
-- params: none
SELECT bucket, base_rows, sum_rows
FROM fp_check
WHERE base_rows <> sum_rows OR base_value <> sum_value
ORDER BY bucket
