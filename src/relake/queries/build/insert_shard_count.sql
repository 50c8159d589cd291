-- Returns: nothing; adds one shard's base and kept row counts.
-- Reads: nothing.
-- params: $shard, $base_rows, $kept_rows
INSERT INTO shard_counts VALUES ($shard, $base_rows, $kept_rows)
