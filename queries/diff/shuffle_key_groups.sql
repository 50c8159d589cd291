-- Returns: nothing; creates TEMP TABLE kg with one row per side and key of one key bucket: side, k (NULL
--   for the rows whose key is NULL) and n (its rows). A reduce task's input to the key check that
--   diff/key_check makes on the driver for the local engine: every row of one key lands in one bucket, so
--   a key duplicated anywhere is duplicated inside its bucket.
-- Reads: view parts (k, h, f, side: the rows of this bucket written by diff/shuffle_map for both sides).
-- params: none
CREATE OR REPLACE TEMP TABLE kg AS
SELECT side, k, count(*) AS n
FROM parts
GROUP BY side, k
