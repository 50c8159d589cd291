-- Returns: removed rows per category (each distinct category of a row counts once), most first: category, rows.
-- Reads: view removed_all (lineage.bind_removed).
-- params: none
SELECT category, count(*) AS rows
FROM (SELECT unnest(list_distinct(categories)) AS category FROM removed_all)
GROUP BY ALL
ORDER BY rows DESC, category
