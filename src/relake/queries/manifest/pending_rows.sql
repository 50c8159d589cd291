-- Returns: the rows of one pending publication (see manifest/publication_rows), as its log entry holds them.
-- Reads: temp table pending_rows.
-- params: $pub
SELECT * FROM pending_rows WHERE pub = $pub ORDER BY url_sha256, caption_sha256, key_sha256, category, status
