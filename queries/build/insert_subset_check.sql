-- Returns: nothing; records the figures for the subset audit.
-- Reads: nothing.
-- params: $base_rows, $base_hash, $removed_rows, $removed_hash, $kept_rows, $kept_hash
INSERT INTO subset_check VALUES ($base_rows, $base_hash, $removed_rows, $removed_hash, $kept_rows, $kept_hash)
