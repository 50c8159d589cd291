-- Returns: the compression codec of the first column chunk of parquet file $file (e.g. SNAPPY, ZSTD),
--   no row for a file without row groups.
-- Reads: the footer of $file.
-- params: $file
SELECT compression FROM parquet_metadata($file) LIMIT 1
