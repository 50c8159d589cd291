-- Returns: nothing; creates TEMP TABLE dk (k, change, f: one row per differing key, as diff/keyed_keys
--   makes it; and fa, fb: the file index of its row in A and in B, which diff/write_wanted routes the fetch
--   by) from the rows the reduce tasks of the distributed keyed diff found (diff/shuffle_reduce).
-- Reads: view dk_parts (k, change, f, fa, fb; k and f already cast to the types of view a's k and f).
-- params: none
CREATE OR REPLACE TEMP TABLE dk AS
SELECT k, change, f, fa, fb FROM dk_parts
