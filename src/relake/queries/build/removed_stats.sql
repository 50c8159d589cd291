-- Returns: removed rows per category and whether the category holds sensitive removals; for the manifest.
-- Reads: table removed.
-- params: none
SELECT c AS category, count(*) AS rows, bool_or(sensitive) AS has_sensitive
FROM (SELECT unnest(categories) AS c, sensitive FROM removed)
GROUP BY c
ORDER BY c
