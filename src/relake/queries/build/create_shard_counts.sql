-- Returns: nothing; creates the table the shard-count audit reads.
-- Reads: nothing.
-- params: none
CREATE OR REPLACE TEMP TABLE shard_counts (shard INTEGER, base_rows BIGINT, kept_rows BIGINT)
