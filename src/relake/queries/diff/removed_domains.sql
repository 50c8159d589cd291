-- Returns: the $top hosts with the most removed rows: host (lower-cased, NULL when the URL has no
--   scheme://host) and rows. The URL is read from {'k': key, 'r': A's values} by the JSON pointer $url_pointer.
-- Reads: TEMP TABLE d.
-- params: $url_pointer, $top
WITH u AS (
    SELECT json_extract_string(to_json({'k': k, 'r': a_r}), $url_pointer) AS url, n
    FROM d
    WHERE change = 'removed'
),
h AS (
    SELECT
        nullif(lower(regexp_extract(trim(url), '^[A-Za-z][A-Za-z0-9+.-]*://(?:[^@/?#]*@)?(\[[^\]/?#]*\]|[^:/?#]*)', 1)), '')
            AS host,
        n
    FROM u
)
SELECT host, sum(n) AS rows
FROM h
GROUP BY host
ORDER BY rows DESC, host NULLS LAST
LIMIT $top
