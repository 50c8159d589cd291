-- Returns: nothing; inserts rows whose canonical URL's host equals a blocklisted domain or is a sub-domain
--   of one (every dot-suffix of the host is looked up).
-- Reads: views rows(file, pos, url, caption, id) and bl(entry).
-- params: $rule
INSERT INTO matches
SELECT DISTINCT s.file, s.pos, $rule, 'domain', bl.entry
FROM (
    SELECT file, pos,
        unnest(list_transform(
            range(1, len(string_split(host, '.')) + 1),
            lambda i: array_to_string(string_split(host, '.')[i:], '.')
        )) AS suffix
    FROM (SELECT file, pos, url_host(canonical_url(url)) AS host FROM rows)
    WHERE host IS NOT NULL AND host <> ''
) AS s
JOIN bl ON s.suffix = bl.entry
