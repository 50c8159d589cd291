-- Returns: the $top hosts (lower-cased; NULL when the URL has none) with the most removed rows, most first: host,
--   rows. Rows a sensitive rule removed, and every row sharing a URL with one, are left out (counted by
--   report/removed_totals, never named).
-- Reads: view removed_all (lineage.bind_removed); macro url_host (build/url_host).
-- params: $top
WITH s AS (SELECT DISTINCT url FROM removed_all WHERE coalesce(sensitive, false) AND url IS NOT NULL)
SELECT nullif(lower(url_host(trim(r.url))), '') AS host, count(*) AS rows
FROM removed_all AS r
ANTI JOIN s ON s.url = r.url
WHERE NOT coalesce(r.sensitive, false)
GROUP BY ALL
ORDER BY rows DESC, host NULLS LAST
LIMIT $top
