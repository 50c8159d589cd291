-- Returns: nothing; creates the table mapping each read file name (as DuckDB reports it) to its shard index.
-- Reads: nothing.
-- params: none
CREATE OR REPLACE TEMP TABLE shard_files (file VARCHAR, shard INTEGER)
