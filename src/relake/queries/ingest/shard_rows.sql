-- Returns: one row per parquet file: file name and the row count recorded in its footer.
-- Reads: the parquet footers of the files in $files (already checked to be plain paths).
-- params: $files
SELECT file_name, sum(num_rows) AS rows
FROM parquet_file_metadata($files)
GROUP BY file_name
