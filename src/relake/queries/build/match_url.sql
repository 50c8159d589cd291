-- Returns: nothing; inserts rows of `rows` whose URL equals a blocklisted URL, raw ('url') or only after
--   canonicalisation of both sides ('canonical-url').
-- Reads: views rows(file, pos, url, caption, id) and bl(entry).
-- params: $rule
INSERT INTO matches
SELECT r.file, r.pos, $rule, CASE WHEN trim(r.url) = b.entry THEN 'url' ELSE 'canonical-url' END, b.entry
FROM rows AS r
JOIN (SELECT entry, canonical_url(entry) AS canon FROM bl) AS b ON canonical_url(r.url) = b.canon
