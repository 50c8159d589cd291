-- Returns: nothing; inserts the rows match_url inserts, found through the URL cache: the rows whose cached h32
--   equals an entry's canonical hash prefix are the candidates, and a candidate matches when its own URL's
--   canonical form equals the entry's (so a prefix collision never removes a row). canonical_url runs on the
--   blocklist and the candidates only.
-- Reads: views rows(file, pos, url, caption, id), bl(entry), url_cache(cache_file, pos, h32, host), table
--   cache_files(cache_file, file).
-- params: $rule
INSERT INTO matches
SELECT r.file, r.pos, $rule, CASE WHEN trim(r.url) = k.entry THEN 'url' ELSE 'canonical-url' END, k.entry
FROM (
    SELECT cf.file, c.pos, b.entry, b.canon
    FROM url_cache AS c
    JOIN (
        SELECT entry, canon, CAST('0x' || sha256(canon)[1:8] AS UINTEGER) AS h32
        FROM (SELECT entry, canonical_url(entry) AS canon FROM bl)
        WHERE canon IS NOT NULL
    ) AS b ON c.h32 = b.h32
    JOIN cache_files AS cf ON cf.cache_file = c.cache_file
) AS k
JOIN rows AS r ON r.file = k.file AND r.pos = k.pos
WHERE canonical_url(r.url) = k.canon
