-- Returns: nothing; writes the base shard of view shard without the rows whose position has bit 1 in the bitstring
--   $mask ('0'/'1' per row), in the base's order, snappy-compressed. Run on a single-threaded connection so
--   row groups (and therefore bytes) are the same on every run.
-- Reads: view shard (db.bind_shard: the parquet file, with file_row_number; optional columns stay optional).
-- params: $mask, $out
COPY (
    SELECT * EXCLUDE (file_row_number)
    FROM shard
    WHERE get_bit(CAST($mask AS BIT), CAST(file_row_number AS INTEGER)) = 0
) TO $out (FORMAT parquet, COMPRESSION snappy, ROW_GROUP_SIZE 122880)
