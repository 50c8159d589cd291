-- Returns: one row: the manifest's row count, how many url_sha256 values are not 64 lower-case hex digits
--   (NULL included), how many entries have an unknown match level or lack the caption_sha256 (caption, key)
--   or key_sha256 (key) that level needs, and how many non-NULL image hashes are not $image_len lower-case hex
--   digits.
-- Reads: view manifest_rows(match, url_sha256, caption_sha256, key_sha256, img).
-- params: $image_len
SELECT
    count(*),
    count(*) FILTER (WHERE url_sha256 IS NULL OR NOT regexp_full_match(url_sha256, '[0-9a-f]{64}')),
    count(*) FILTER (WHERE match IS NULL OR match NOT IN ('url', 'caption', 'key')
        OR (match IN ('caption', 'key')
            AND NOT coalesce(regexp_full_match(caption_sha256, '[0-9a-f]{64}'), false))
        OR (match = 'key' AND NOT coalesce(regexp_full_match(key_sha256, '[0-9a-f]{64}'), false))),
    count(*) FILTER (WHERE img IS NOT NULL AND (length(img) <> $image_len OR NOT regexp_full_match(img, '[0-9a-f]+')))
FROM manifest_rows
