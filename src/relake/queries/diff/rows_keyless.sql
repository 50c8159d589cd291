-- Returns: the differing rows of a keyless diff for the output file, one per copy added or removed:
--   row_md5 (md5 hex of the row's JSON), change, changed_columns (empty), a_r, b_r.
-- Reads: TEMP TABLE d (from diff/keyless).
-- params: none
SELECT md5(CAST(to_json(coalesce(a_r, b_r)) AS VARCHAR)) AS row_md5, change, changed_columns, a_r, b_r
FROM d, range(n)
