-- Returns: one row: the manifest's row count, how many url_sha256 values are not 64 lower-case hex
--   digits (NULL included), and how many non-NULL image hashes are not $image_len lower-case hex digits.
-- Reads: view man(url_sha256, img).
-- params: $image_len
SELECT
    count(*),
    count(*) FILTER (WHERE url_sha256 IS NULL OR NOT regexp_full_match(url_sha256, '[0-9a-f]{64}')),
    count(*) FILTER (WHERE img IS NOT NULL AND (length(img) <> $image_len OR NOT regexp_full_match(img, '[0-9a-f]+')))
FROM man
