-- Returns: nothing; inserts into hits every copy row whose canonical-URL sha256 is a manifest url_sha256
--   (by_url), or whose image hash (lower-cased, trimmed) is a manifest image hash (by_image; only when
--   $use_image: the copy's hash column and the manifest's use the same algorithm).
-- Reads: views copy_rows(file, pos, key, url, caption, status, error, img) and man(url_sha256, img).
-- params: $use_image
INSERT INTO hits
SELECT file, pos, key, status, error, by_url, by_image, false
FROM (
    SELECT file, pos, key, status, error,
        coalesce(url_sha256(url) IN (SELECT url_sha256 FROM man WHERE url_sha256 IS NOT NULL), false) AS by_url,
        coalesce(lower(trim(img)) IN (SELECT img FROM man WHERE $use_image AND img IS NOT NULL), false) AS by_image
    FROM copy_rows
)
WHERE by_url OR by_image
