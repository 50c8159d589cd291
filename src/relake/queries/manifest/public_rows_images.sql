-- Returns: as public_rows, plus the image hash when it came from the base data itself (a hash column or a
--   LAION-style side table; never from a partner's list), NULL otherwise; sorted by hash, category, image.
-- Reads: view removed_all.
-- params: none
SELECT DISTINCT url_sha256, categories[1] AS category, lower(image_hash) AS image_hash
FROM removed_all
WHERE url_sha256 IS NOT NULL
ORDER BY url_sha256, category, image_hash NULLS LAST
