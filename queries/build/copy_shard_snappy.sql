-- Returns: nothing; rewrites the base shard of view shard whole (no row removed), snappy-compressed, single-threaded.
-- Reads: view shard (db.bind_shard: the parquet file, with file_row_number; optional columns stay optional).
-- params: $out
COPY (SELECT * EXCLUDE (file_row_number) FROM shard) TO $out (FORMAT parquet, COMPRESSION snappy, ROW_GROUP_SIZE 122880)
