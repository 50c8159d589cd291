-- Returns: every row of table removed_full, by shard and position (to be written as removed.parquet).
-- Reads: table removed_full.
-- params: none
SELECT * FROM removed_full ORDER BY shard, position
