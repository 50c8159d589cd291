-- Audit (must return zero rows): shards where base rows differ from kept rows (new shard footer) plus
--   removed rows.
-- Reads: table shard_counts(shard, base_rows, kept_rows), table removed.
-- params: none
SELECT c.shard, c.base_rows, c.kept_rows, coalesce(r.n, 0) AS removed_rows
FROM shard_counts AS c
LEFT JOIN (SELECT shard, count(*) AS n FROM removed GROUP BY shard) AS r ON r.shard = c.shard
WHERE c.base_rows <> c.kept_rows + coalesce(r.n, 0)
ORDER BY c.shard
