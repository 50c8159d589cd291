-- Returns: nothing; rewrites the parquet file of view shard whole (no row removed) with codec $codec,
--   single-threaded (same row groups, and bytes, on every run).
-- Reads: view shard (db.bind_shard: the parquet file, with file_row_number; optional columns stay optional).
-- params: $out, $codec
COPY (SELECT * EXCLUDE (file_row_number) FROM shard) TO $out (FORMAT parquet, COMPRESSION $codec, ROW_GROUP_SIZE 122880)
