-- Returns: per public category that holds sensitive removals: distinct hashes matched by a sensitive rule
--   and distinct hashes matched only by non-sensitive rules; only categories whose crowd is below $k.
-- Reads: view removed_all.
-- params: $k
SELECT category, sensitive_hashes, benign_hashes
FROM (
    SELECT categories[1] AS category,
        count(DISTINCT url_sha256) FILTER (WHERE sensitive) AS sensitive_hashes,
        count(DISTINCT url_sha256) FILTER (WHERE NOT sensitive) AS benign_hashes
    FROM removed_all
    WHERE url_sha256 IS NOT NULL
    GROUP BY ALL
)
WHERE sensitive_hashes > 0 AND benign_hashes < $k
ORDER BY category
