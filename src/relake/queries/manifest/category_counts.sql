-- Returns: per public category the number of distinct URL hashes it lists (what the sidecar publishes).
-- Reads: view removed_all.
-- params: none
SELECT categories[1] AS category, count(DISTINCT url_sha256) AS hashes
FROM removed_all
WHERE url_sha256 IS NOT NULL
GROUP BY ALL
ORDER BY category
