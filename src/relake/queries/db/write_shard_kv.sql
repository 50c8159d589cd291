-- Returns: nothing; as db/write_shard, and the written file carries the key-value metadata $kv (a struct of
--   strings: the source file's pairs but ARROW:schema). DuckDB refuses an empty struct there, hence two queries.
-- Reads: view shard (db.bind_shard).
-- params: $mask, $out, $codec, $kv
COPY (
    SELECT * EXCLUDE (file_row_number)
    FROM shard
    WHERE $mask IS NULL OR get_bit(CAST($mask AS BIT), CAST(file_row_number AS INTEGER)) = 0
) TO $out (FORMAT parquet, COMPRESSION $codec, ROW_GROUP_SIZE 122880, KV_METADATA $kv)
