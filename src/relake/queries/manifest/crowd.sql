-- Returns: per public category that holds sensitive removals: distinct hashes matched by a sensitive rule
--   and distinct hashes matched only by non-sensitive rules (a hash that any sensitive rule matched, in any
--   row, is not part of the crowd); only categories whose crowd is below $k.
-- Reads: view removed_all.
-- params: $k
WITH h AS (
    SELECT url_sha256, bool_or(sensitive) AS any_sensitive
    FROM removed_all
    WHERE url_sha256 IS NOT NULL
    GROUP BY url_sha256
)
SELECT category, sensitive_hashes, benign_hashes
FROM (
    SELECT r.categories[1] AS category,
        count(DISTINCT r.url_sha256) FILTER (WHERE r.sensitive) AS sensitive_hashes,
        count(DISTINCT r.url_sha256) FILTER (WHERE NOT h.any_sensitive) AS benign_hashes
    FROM removed_all AS r
    JOIN h ON h.url_sha256 = r.url_sha256
    GROUP BY ALL
)
WHERE sensitive_hashes > 0 AND benign_hashes < $k
ORDER BY category
