-- Returns: the crowd rule's numbers for one publication A → B, per public category: hashes (distinct URL hashes
--   listed, as the manifest counts them), sensitive (those of rows a sensitive rule removed), benign (those
--   removed only by non-sensitive rules that no public rule explains, whose URL no sensitive row has: the
--   crowd), explained (those a public `where` or domain rule explains: no crowd). The publication alone; the
--   lake's other publications are checked when it is published (manifest/crowd).
-- Reads: view revealed (the rows of manifest/publication_rows).
-- params: none
WITH su AS (SELECT DISTINCT url_sha256 FROM revealed WHERE status = 'sensitive')
SELECT r.category,
    count(DISTINCT r.url_sha256) AS hashes,
    count(DISTINCT r.url_sha256) FILTER (WHERE r.status = 'sensitive') AS sensitive,
    count(DISTINCT r.url_sha256) FILTER (WHERE r.status = 'benign' AND su.url_sha256 IS NULL) AS benign,
    count(DISTINCT r.url_sha256) FILTER (WHERE r.status = 'explained') AS explained
FROM revealed AS r
LEFT JOIN su ON su.url_sha256 = r.url_sha256
GROUP BY r.category
ORDER BY r.category
