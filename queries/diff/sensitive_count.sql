-- Returns: how many rows of A were withheld from the row-level diff because a sensitive rule removed them.
-- Reads: views a_all (A before withholding) and a_src (after).
-- params: none
SELECT (SELECT count(*) FROM a_all) - (SELECT count(*) FROM a_src)
