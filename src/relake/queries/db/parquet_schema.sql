-- Returns: the schema elements of the parquet file $file in footer order (depth first, the root first): name,
--   repetition_type ('REQUIRED' | 'OPTIONAL' | 'REPEATED') and num_children (NULL for a leaf).
-- Reads: the footer of the parquet file $file.
-- params: $file
SELECT name, repetition_type, num_children FROM parquet_schema($file)
