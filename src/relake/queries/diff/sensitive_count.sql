-- Returns: one row: the rows of A and of B before withholding (the caller subtracts the rows the diff read,
--   counted by its own scans, to get how many rows of each side were withheld because a sensitive rule of this
--   lake removed their URL or key).
-- Reads: views a_all, b_all (A and B before withholding).
-- params: none
SELECT (SELECT count(*) FROM a_all), (SELECT count(*) FROM b_all)
