-- Returns: one row: the number of rows of each whole side (before any bucket filtering).
-- Reads: views a_src and b_src (the sides as read).
-- params: none
SELECT (SELECT count(*) FROM a_src) AS a_rows, (SELECT count(*) FROM b_src) AS b_rows
