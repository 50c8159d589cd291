-- Returns: $n rows of the original (url, caption, id as text), picked deterministically by a seeded hash
--   of the id, among rows with a non-empty URL.
-- Reads: view src with columns URL, TEXT, SAMPLE_ID (a LAION-like original).
-- params: $n, $salt
SELECT URL, TEXT, CAST(SAMPLE_ID AS VARCHAR) AS id
FROM src
WHERE URL IS NOT NULL AND URL <> ''
ORDER BY md5(CAST(SAMPLE_ID AS VARCHAR) || $salt)
LIMIT $n
