-- Returns: the $rank-th most frequent host among the original's URLs with between 50 and 2000 rows.
-- Reads: view src; macro url_host.
-- params: $rank
SELECT host
FROM (SELECT url_host(lower(URL)) AS host, count(*) AS n FROM src GROUP BY ALL)
WHERE n BETWEEN 50 AND 2000 AND host LIKE '%.%.%'
ORDER BY n DESC, host
LIMIT 1 OFFSET $rank
