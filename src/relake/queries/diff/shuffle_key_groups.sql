-- Returns: nothing; creates TEMP TABLE kg with one row per key of one key bucket: ka and kb (the key's value
--   in A and in B, NULL on a side without it: -0.0 in A and 0.0 in B group together, and each side reports
--   its own, as diff/keyed_keys and diff/key_check do; both NULL for the rows whose key is NULL), na and nb (its rows in A and in B), ha and hb (the 64-bit row hash h of
--   one of its rows in A and in B; NULL on a side without it), f (A's file index of one of its rows in
--   A, as reported) and fa and fb (the file index in A and in B of one of its rows there, always: where a
--   fetch task finds it). One hash aggregate serves both the key check (diff/shuffle_key_stats: every row of a key lands in one
--   bucket, so a key duplicated anywhere is duplicated here) and, once the keys are unique, the differing
--   keys (diff/shuffle_reduce: the FULL OUTER join of diff/keyed_keys on unique keys).
-- Reads: view parts (k, h, f, fi, side: the rows of this bucket written by diff/shuffle_map for both sides).
-- params: none
CREATE OR REPLACE TEMP TABLE kg AS
SELECT
    any_value(k) FILTER (WHERE side = 'a') AS ka,
    any_value(k) FILTER (WHERE side = 'b') AS kb,
    count(*) FILTER (WHERE side = 'a') AS na,
    count(*) FILTER (WHERE side = 'b') AS nb,
    any_value(h) FILTER (WHERE side = 'a') AS ha,
    any_value(h) FILTER (WHERE side = 'b') AS hb,
    any_value(f) FILTER (WHERE side = 'a') AS f,
    any_value(fi) FILTER (WHERE side = 'a') AS fa,
    any_value(fi) FILTER (WHERE side = 'b') AS fb
FROM parts
GROUP BY k
