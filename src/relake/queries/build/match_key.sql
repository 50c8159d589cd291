-- Returns: nothing; inserts rows whose dataset key (the id role, as text) is in the blocklist.
-- Reads: views rows(file, pos, url, caption, id) and bl(entry).
-- params: $rule
INSERT INTO matches
SELECT r.file, r.pos, $rule, 'key', bl.entry
FROM rows AS r
JOIN bl ON r.id = bl.entry
