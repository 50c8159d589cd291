-- Returns: nothing; inserts into hits every copy row whose (canonical URL, caption) pair is not in the
--   release (allowlist mode). NULL equals NULL on both columns, so a NULL caption matches a NULL caption.
-- Reads: views copy_rows(file, pos, key, url, caption, rid, status, error, img) and rel_rows(url, caption).
-- params: none
INSERT INTO hits
SELECT c.file, c.pos, c.key, c.status, c.error, false, false, true, false, false
FROM (SELECT file, pos, key, status, error, canonical_url(url) AS cu, caption FROM copy_rows) AS c
ANTI JOIN (SELECT canonical_url(url) AS cu, caption FROM rel_rows) AS r
    ON c.cu IS NOT DISTINCT FROM r.cu AND c.caption IS NOT DISTINCT FROM r.caption
