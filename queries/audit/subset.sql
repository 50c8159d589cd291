-- Audit (must return zero rows): the written shards are not exactly the base rows minus the removed rows
--   (as multisets: row count and the sum of whole-row hashes), i.e. a row was added, lost or altered.
-- Reads: table subset_check.
-- params: none
SELECT base_rows, removed_rows, kept_rows
FROM subset_check
WHERE base_rows - removed_rows <> kept_rows OR base_hash - removed_hash <> kept_hash
