-- Returns: nothing; creates the table the subset audit reads: per shard, row counts and hash sums of the base
--   shard, of its rows that were removed, and of the shard written from it.
-- Reads: nothing.
-- params: none
CREATE OR REPLACE TEMP TABLE subset_check (
    shard INTEGER, base_rows BIGINT, base_hash HUGEINT, removed_rows BIGINT, removed_hash HUGEINT,
    kept_rows BIGINT, kept_hash HUGEINT
)
