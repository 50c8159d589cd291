-- Returns: the differing rows of a keyed diff for the output file: k, change, changed_columns, a_r, b_r.
-- Reads: TEMP TABLE d (from diff/keyed).
-- params: none
SELECT k, change, changed_columns, a_r, b_r
FROM d
