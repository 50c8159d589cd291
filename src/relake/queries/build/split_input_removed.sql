-- Returns: nothing; temp table split_input (what audit/base_split scans): only the removed base rows, for a
--   base whose manifest has its row-hash sums. The position filter (any shard) lets the parquet reader decode
--   only the rows at removed positions; relake_removed then keeps the exact (file, position) pairs. A table,
--   so build/removed_full reads these rows again without a second parquet scan (it spills when large).
-- Reads: view base_flagged, table removed.
-- params: none
CREATE OR REPLACE TEMP TABLE split_input AS
SELECT * FROM base_flagged
WHERE relake_pos IN (SELECT position FROM removed) AND relake_removed
