-- Returns: nothing; records one shard's figures for the subset audit.
-- Reads: nothing.
-- params: $shard, $base_rows, $base_hash, $removed_rows, $removed_hash, $kept_rows, $kept_hash
INSERT INTO subset_check VALUES ($shard, $base_rows, $base_hash, $removed_rows, $removed_hash, $kept_rows, $kept_hash)
