-- Returns: the public removal manifest rows: distinct (match, url_sha256, caption_sha256, key_sha256,
--   category, image hash when $images else NULL), sorted by hash then category. Rows without a URL (no hash)
--   cannot be looked up and are left out. Nothing positional, no URL, caption, key or rule.
-- Reads: temp table entries (manifest/create_entries).
-- params: $images
SELECT DISTINCT match, url_sha256, caption_sha256, key_sha256, category,
    CASE WHEN $images THEN image_hash END AS image_hash
FROM entries
ORDER BY url_sha256, caption_sha256 NULLS FIRST, key_sha256 NULLS FIRST, category, image_hash NULLS LAST
