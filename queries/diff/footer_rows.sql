-- Returns: one row: the rows of the parquet files $files as their footers count them (no row is read), for
--   sizing the distributed keyed diff's key buckets before any of its tasks run.
-- Reads: the footers of the parquet files $files.
-- params: $files
SELECT coalesce(sum(num_rows), 0) FROM parquet_file_metadata($files)
