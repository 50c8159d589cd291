-- Returns: nothing; rewrites base shard $src whole (no row removed), zstd-compressed, single-threaded.
-- Reads: the parquet file $src.
-- params: $src, $out
COPY (SELECT * FROM read_parquet($src, hive_partitioning = false)) TO $out (FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 122880)
