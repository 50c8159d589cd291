-- Returns: the removed positions of one base shard, ascending.
-- Reads: table removed.
-- params: $shard
SELECT position FROM removed WHERE shard = $shard ORDER BY position
