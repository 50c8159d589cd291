-- Returns: the number of removed rows.
-- Reads: table removed.
-- params: none
SELECT count(*) FROM removed
