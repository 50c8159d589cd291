-- Returns: nothing; creates TEMP TABLE dk with one row per differing key: k, change ('added' | 'removed' |
--   'changed') and f (A's file index). The FULL OUTER hash join on k carries only the key, a 64-bit
--   hash() of the compared values and f, so its hash table stays small (no spill under 1 GB at 10M rows).
--   Equal values always hash equal (NULLs, -0.0/0.0 and NaN included), so every key whose values hash
--   differently is a candidate; diff/keyed then drops any whose values turn out equal. A change is missed
--   only when a row's old and new values collide on the 64-bit hash (about 2^-64 per changed row for data
--   not crafted against DuckDB's hash).
-- Reads: views a (k, r, f) and b (k, r); keys are unique and non-NULL (checked before).
-- params: none
CREATE OR REPLACE TEMP TABLE dk AS
SELECT
    coalesce(ha.k, hb.k) AS k,
    CASE WHEN ha.k IS NULL THEN 'added' WHEN hb.k IS NULL THEN 'removed' ELSE 'changed' END AS change,
    ha.f AS f
FROM (SELECT k, hash(r) AS h, f FROM a) AS ha
FULL OUTER JOIN (SELECT k, hash(r) AS h FROM b) AS hb ON ha.k = hb.k
WHERE ha.k IS NULL OR hb.k IS NULL OR ha.h <> hb.h
