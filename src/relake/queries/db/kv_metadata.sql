-- Returns: the key-value metadata of parquet file $file (key, value: BLOBs), in the footer's order.
-- Reads: the footer of $file.
-- params: $file
SELECT key, value FROM parquet_kv_metadata($file)
