-- Returns: for each given URL (in order), its canonical sha256 and the public category it is listed under in
--   the manifest, or NULL when it is not listed.
-- Reads: view manifest_rows(url_sha256, category); macros from canonical/.
-- params: $urls
SELECT u.url, url_sha256(u.url) AS url_sha256, m.category
FROM (SELECT unnest($urls) AS url, generate_subscripts($urls, 1) AS i) AS u
LEFT JOIN (SELECT DISTINCT url_sha256, category FROM manifest_rows) AS m ON m.url_sha256 = url_sha256(u.url)
ORDER BY u.i, m.category
