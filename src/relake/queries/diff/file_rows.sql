-- Returns: one row per parquet file of $files: file_name and num_rows, its rows as its footer counts them (no
--   row is read), for sizing the distributed keyed diff's map tasks and key buckets before any task runs.
-- Reads: the footers of the parquet files $files.
-- params: $files
SELECT file_name, num_rows FROM parquet_file_metadata($files)
