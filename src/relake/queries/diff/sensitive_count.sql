-- Returns: one row: the rows of A before withholding (the caller subtracts the rows the diff read, counted
--   by its own scans, to get how many rows of A were withheld because a sensitive rule removed them).
-- Reads: view a_all (A before withholding).
-- params: none
SELECT count(*) FROM a_all
