-- Returns: nothing; inserts the rows match_url_hash inserts for sha256 digests of canonical URLs, found through
--   the URL cache: the rows whose cached h32 equals an entry's first 32 bits are the candidates, and a candidate
--   matches when the sha256 of its own URL's canonical form equals the entry.
-- Reads: views rows(file, pos, url, caption, id), bl(entry), url_cache(cache_file, pos, h32, host), table
--   cache_files(cache_file, file).
-- params: $rule, $how
INSERT INTO matches
WITH k AS (
    SELECT cf.file, c.pos, b.entry
    FROM url_cache AS c
    JOIN (SELECT entry, CAST('0x' || entry[1:8] AS UINTEGER) AS h32 FROM bl) AS b ON c.h32 = b.h32
    JOIN cache_files AS cf ON cf.cache_file = c.cache_file
),
-- materialised, so the hash below is computed for the candidates only (not pushed into the join)
j AS MATERIALIZED (
    SELECT r.file, r.pos, r.url, k.entry FROM rows AS r JOIN k ON r.file = k.file AND r.pos = k.pos
)
SELECT j.file, j.pos, $rule, $how, j.entry
FROM j
WHERE sha256(canonical_url(j.url)) = j.entry
