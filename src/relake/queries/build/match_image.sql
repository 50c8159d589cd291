-- Returns: nothing; inserts rows whose image hash (lower-cased hex, from a base column or a side table,
--   already projected into view img) is in the blocklist.
-- Reads: views img(file, pos, img) and bl(entry).
-- params: $rule, $how
INSERT INTO matches
SELECT i.file, i.pos, $rule, $how, bl.entry
FROM img AS i
JOIN bl ON lower(trim(i.img)) = bl.entry
