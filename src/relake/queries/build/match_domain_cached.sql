-- Returns: nothing; inserts the rows match_domain inserts, found through the URL cache: the dot-suffixes of
--   each distinct cached host are looked up in the blocklist, then the rows with a matching host are taken.
-- Reads: views bl(entry), url_cache(cache_file, pos, h32, host), table cache_files(cache_file, file).
-- params: $rule
INSERT INTO matches
SELECT cf.file, c.pos, $rule, 'domain', h.entry
FROM url_cache AS c
JOIN (
    SELECT DISTINCT s.host, bl.entry
    FROM (
        SELECT host,
            unnest(list_transform(
                range(1, len(string_split(host, '.')) + 1),
                lambda i: array_to_string(string_split(host, '.')[i:], '.')
            )) AS suffix
        FROM (SELECT DISTINCT host FROM url_cache WHERE host IS NOT NULL AND host <> '')
    ) AS s
    JOIN bl ON s.suffix = bl.entry
) AS h ON c.host = h.host
JOIN cache_files AS cf ON cf.cache_file = c.cache_file
