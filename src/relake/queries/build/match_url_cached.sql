-- Returns: nothing; inserts the rows match_url inserts, found through the URL cache: the rows whose cached h32
--   equals an entry's canonical hash prefix are the candidates, and a candidate matches when its own URL's
--   canonical form equals the entry's (so a prefix collision never removes a row). canonical_url runs on the
--   blocklist and the candidates only.
-- Reads: views rows(file, pos, url, caption, id), bl(entry), url_cache(cache_file, pos, h32, host), table
--   cache_files(cache_file, file).
-- params: $rule
INSERT INTO matches
WITH k AS (
    SELECT cf.file, c.pos, b.entry, b.canon
    FROM url_cache AS c
    JOIN (
        SELECT entry, canon, CAST('0x' || sha256(canon)[1:8] AS UINTEGER) AS h32
        FROM (SELECT entry, canonical_url(entry) AS canon FROM bl)
        WHERE canon IS NOT NULL
    ) AS b ON c.h32 = b.h32
    JOIN cache_files AS cf ON cf.cache_file = c.cache_file
),
-- materialised, so the canonical form below is computed for the candidates only (not pushed into the join)
j AS MATERIALIZED (
    SELECT r.file, r.pos, r.url, k.entry, k.canon FROM rows AS r JOIN k ON r.file = k.file AND r.pos = k.pos
)
SELECT j.file, j.pos, $rule, CASE WHEN trim(j.url) = j.entry THEN 'url' ELSE 'canonical-url' END, j.entry
FROM j
WHERE canonical_url(j.url) = j.canon
