-- Returns: for each given URL (in order), its canonical sha256, each public category it is listed under in
--   the manifest (NULL when it is not listed), and partial: true when no entry of the URL is match='url' (the
--   manifest lists only some rows of it: those with a certain caption, or id).
-- Reads: view manifest_rows(match, url_sha256, category); macros from canonical/.
-- params: $urls
SELECT u.url, url_sha256(u.url) AS url_sha256, m.category, m.partial
FROM (SELECT unnest($urls) AS url, generate_subscripts($urls, 1) AS i) AS u
LEFT JOIN (
    SELECT url_sha256, category, NOT bool_or(bool_or(match = 'url')) OVER (PARTITION BY url_sha256) AS partial
    FROM manifest_rows
    GROUP BY url_sha256, category
) AS m ON m.url_sha256 = url_sha256(u.url)
ORDER BY u.i, m.category
