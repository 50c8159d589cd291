-- Returns: the public removal manifest rows: distinct (canonical URL sha256, public category), sorted by
--   hash then category; the public category of a row is the first of its sorted categories. Rows without
--   a URL (no hash) cannot be looked up and are left out. Nothing positional, no URL, caption, key or rule.
-- Reads: view removed_all (removed.parquet of every generation between the two versions).
-- params: none
SELECT DISTINCT url_sha256, categories[1] AS category
FROM removed_all
WHERE url_sha256 IS NOT NULL
ORDER BY url_sha256, category
