-- Returns: nothing; writes view out_rows to $out as zstd parquet (run single-threaded for stable bytes).
-- Reads: view out_rows.
-- params: $out
COPY (SELECT * FROM out_rows) TO $out (FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 1000000)
