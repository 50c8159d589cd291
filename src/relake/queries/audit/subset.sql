-- Audit (must return zero rows): shards written that are not exactly their base shard's rows minus its removed
--   rows (as multisets: row count and the sum of whole-row hashes), i.e. a row was added, lost, altered or
--   written into another shard.
-- Reads: table subset_check.
-- params: none
SELECT shard, base_rows, removed_rows, kept_rows
FROM subset_check
WHERE base_rows - removed_rows <> kept_rows OR base_hash - removed_hash <> kept_hash
ORDER BY shard
