-- Returns: one row: the removed rows of the chain and, of those, the rows a sensitive rule removed.
-- Reads: view removed_all (lineage.bind_removed).
-- params: none
SELECT count(*) AS rows, count(*) FILTER (WHERE coalesce(sensitive, false)) AS sensitive
FROM removed_all
