-- Returns: one row, the number of rows written; writes to the parquet file $out one row per differing key
--   of one key bucket: k, change ('added' | 'removed' | 'changed'), f (A's file index) and fa and fb (the
--   file index of its row in A and in B, for routing its fetch), as
--   diff/keyed_keys would find them for these keys (its FULL OUTER join on k, here one group per key, which
--   is the same once the keys are unique and non-NULL: diff/shuffle_key_stats found no problem; same 64-bit
--   row hashes). A reduce task of the distributed keyed diff; diff/keyed_keys_load gathers every bucket's rows.
-- Reads: TEMP TABLE kg (from diff/shuffle_key_groups).
-- params: $out
COPY (
    SELECT
        coalesce(ka, kb) AS k,
        CASE WHEN na = 0 THEN 'added' WHEN nb = 0 THEN 'removed' ELSE 'changed' END AS change,
        f,
        fa,
        fb
    FROM kg
    WHERE na = 0 OR nb = 0 OR ha <> hb
) TO $out (FORMAT parquet)
