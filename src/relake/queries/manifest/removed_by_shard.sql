-- Returns: removed rows per base shard (all categories together), for the changelog.
-- Reads: view removed_all.
-- params: none
SELECT shard, count(*) AS rows FROM removed_all GROUP BY shard ORDER BY shard
