-- Returns: for each given URL (in order), its canonical form and the sha256 of that (what public manifests and
--   url-sha256 blocklists hold); both NULL for a URL that is empty once trimmed.
-- Reads: macros from canonical/.
-- params: $urls
SELECT u.url, canonical_url(u.url) AS canonical, url_sha256(u.url) AS url_sha256
FROM (SELECT unnest($urls) AS url, generate_subscripts($urls, 1) AS i) AS u
ORDER BY u.i
