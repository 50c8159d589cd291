-- Returns: nothing; creates the table the subset audit reads: row counts and hash sums of the base, of the
--   base rows that were removed, and of the written shards.
-- Reads: nothing.
-- params: none
CREATE OR REPLACE TEMP TABLE subset_check (
    base_rows BIGINT, base_hash HUGEINT, removed_rows BIGINT, removed_hash HUGEINT,
    kept_rows BIGINT, kept_hash HUGEINT
)
