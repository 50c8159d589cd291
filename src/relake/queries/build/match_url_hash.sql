-- Returns: nothing; inserts rows whose URL hash ($algo: md5, sha1 or sha256 hex of the canonical URL, or of
--   the trimmed raw URL when $raw) is in the blocklist.
-- Reads: views rows(file, pos, url, caption, id) and bl(entry).
-- params: $rule, $algo, $raw, $how
INSERT INTO matches
SELECT h.file, h.pos, $rule, $how, bl.entry
FROM (
    SELECT file, pos,
        CASE $algo
            WHEN 'md5' THEN md5(u)
            WHEN 'sha1' THEN sha1(u)
            ELSE sha256(u)
        END AS digest
    FROM (SELECT file, pos, CASE WHEN $raw THEN trim(url) ELSE canonical_url(url) END AS u FROM rows)
    WHERE u IS NOT NULL
) AS h
JOIN bl ON h.digest = bl.entry
