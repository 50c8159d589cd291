-- Returns: one row, the number of rows written; writes to the parquet file $out one row per differing key
--   of one key bucket: k, change ('added' | 'removed' | 'changed') and f (A's file index), as
--   diff/keyed_keys would find them for these keys (same FULL OUTER join on k, same 64-bit row hashes h).
--   A reduce task of the distributed keyed diff; diff/keyed_keys_load gathers every bucket's rows.
-- Reads: view parts (k, h, f, side: the rows of this bucket written by diff/shuffle_map for both sides).
-- params: $out
COPY (
    SELECT
        coalesce(ha.k, hb.k) AS k,
        CASE WHEN ha.k IS NULL THEN 'added' WHEN hb.k IS NULL THEN 'removed' ELSE 'changed' END AS change,
        ha.f AS f
    FROM (SELECT k, h, f FROM parts WHERE side = 'a') AS ha
    FULL OUTER JOIN (SELECT k, h FROM parts WHERE side = 'b') AS hb ON ha.k = hb.k
    WHERE ha.k IS NULL OR hb.k IS NULL OR ha.h <> hb.h
) TO $out (FORMAT parquet)
