-- Returns: one scan of the base (view split_input), grouped by file and removed (and, for removed rows, by
--   fingerprint bucket): file, removed, bucket, rows, h = the sum of DuckDB's hash() of each whole row (compared
--   in-process with the written shards' sums), and for removed rows sum_lo, sum_hi = the md5 fingerprint
--   partial sums exactly as fingerprint/buckets computes them.
--   View split_input is base_flagged (build/split_input_all) or, when the base's hash sums are known from
--   its manifest, only its removed rows (build/split_input_removed: the scan then decodes just the rows at
--   removed positions).
-- Reads: view split_input.
-- params: $names
WITH t AS (
    SELECT
        relake_file AS file,
        relake_removed AS removed,
        CAST(hash(*COLUMNS(* EXCLUDE (relake_removed, relake_file, relake_pos, relake_url, relake_caption,
                                      relake_id))) AS HUGEINT) AS h,
        CASE WHEN relake_removed
            THEN md5_number(CAST(json_array(*COLUMNS(* EXCLUDE (relake_removed, relake_file, relake_pos,
                                                                relake_url, relake_caption, relake_id)))
                                 AS VARCHAR) || $names)
        END AS m
    FROM split_input
)
SELECT
    file,
    removed,
    CAST(m & CAST(255 AS UHUGEINT) AS INTEGER) AS bucket,
    count(*) AS rows,
    sum(h) AS h,
    coalesce(sum(CAST(m & CAST(18446744073709551615 AS UHUGEINT) AS HUGEINT)), 0) AS sum_lo,
    coalesce(sum(CAST(m >> 64 AS HUGEINT)), 0) AS sum_hi
FROM t
GROUP BY ALL
