-- Returns: every row of table removed, by shard and position (to be written as removed.parquet).
-- Reads: table removed.
-- params: none
SELECT * FROM removed ORDER BY shard, position
