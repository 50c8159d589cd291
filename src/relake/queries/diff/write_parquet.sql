-- Returns: nothing; writes view diff_out to the parquet file $path, sorted by all columns (key columns first).
-- Reads: view diff_out.
-- params: $path
COPY (SELECT * FROM diff_out ORDER BY ALL) TO $path (FORMAT parquet, COMPRESSION zstd)
