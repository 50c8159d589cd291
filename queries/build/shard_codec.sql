-- Returns: the compression codec of the first column chunk of a parquet file (e.g. SNAPPY, ZSTD).
-- Reads: the footer of $file.
-- params: $file
SELECT compression FROM parquet_metadata($file) LIMIT 1
