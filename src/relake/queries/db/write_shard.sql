-- Returns: nothing; writes the parquet file of view shard without the rows whose position has bit 1 in the
--   bitstring $mask ('0'/'1' per row; NULL keeps every row), in the file's order, with codec $codec (e.g.
--   snappy, zstd). Run on a single-threaded connection so rows keep their order and row groups (and therefore
--   bytes) are the same on every run. Used by build (a base shard) and clean (a copy's shard), through
--   db.write_shard, which picks write_shard_kv when the file has key-value metadata to keep.
-- Reads: view shard (db.bind_shard: the parquet file, with file_row_number; optional columns stay optional).
-- params: $mask, $out, $codec
COPY (
    SELECT * EXCLUDE (file_row_number)
    FROM shard
    WHERE $mask IS NULL OR get_bit(CAST($mask AS BIT), CAST(file_row_number AS INTEGER)) = 0
) TO $out (FORMAT parquet, COMPRESSION $codec, ROW_GROUP_SIZE 122880)
