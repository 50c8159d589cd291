-- Returns: nothing; creates TEMP TABLE dk (k, change, f: one row per differing key, as diff/keyed_keys
--   makes it) from the rows the reduce tasks of the distributed keyed diff found (diff/shuffle_reduce).
-- Reads: view dk_parts (k, change, f; k and f already cast to the types of view a's k and f).
-- params: none
CREATE OR REPLACE TEMP TABLE dk AS
SELECT k, change, f FROM dk_parts
