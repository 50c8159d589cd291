-- Returns: removals recorded by the build(s) from A to B: what ('rule' | 'category'), name and rows (a row
--   matched by two rules counts once for each; each distinct category of a row counts once).
-- Reads: view prov (columns rules VARCHAR[] and categories VARCHAR[], from the removed.parquet files).
-- params: none
SELECT 'rule' AS what, x AS name, count(*) AS rows
FROM (SELECT unnest(list_distinct(rules)) AS x FROM prov)
GROUP BY x
UNION ALL
SELECT 'category' AS what, x AS name, count(*) AS rows
FROM (SELECT unnest(list_distinct(categories)) AS x FROM prov)
GROUP BY x
ORDER BY what DESC, rows DESC, name
