-- Returns: nothing; inserts into hits the copy rows whose image a PDQ check matched (by_image), with their key,
--   status and error from the copy.
-- Reads: views pdq_hits(file, pos) and copy_rows(file, pos, key, status, error, ...).
-- params: none
INSERT INTO hits
SELECT c.file, c.pos, c.key, c.status, c.error, false, true, false, false, false
FROM pdq_hits AS p
JOIN copy_rows AS c ON c.file = p.file AND c.pos = p.pos
