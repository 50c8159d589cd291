-- Returns: nothing; adds one file → shard mapping.
-- Reads: nothing.
-- params: $file, $shard
INSERT INTO shard_files VALUES ($file, $shard)
