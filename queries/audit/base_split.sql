-- Returns: one scan of the base, grouped by removed (and, for removed rows, by fingerprint bucket): rows,
--   the sum of DuckDB's hash() of each whole row (compared in-process with the written shards' sum), and
--   for removed rows the md5 fingerprint partial sums exactly as fingerprint/buckets computes them.
-- Reads: view base_flagged.
-- params: $names
WITH t AS (
    SELECT
        relake_removed AS removed,
        CAST(hash(*COLUMNS(* EXCLUDE (relake_removed))) AS HUGEINT) AS h,
        CASE WHEN relake_removed
            THEN md5_number(CAST(json_array(*COLUMNS(* EXCLUDE (relake_removed))) AS VARCHAR) || $names)
        END AS m
    FROM base_flagged
)
SELECT
    removed,
    CAST(m & CAST(255 AS UHUGEINT) AS INTEGER) AS bucket,
    count(*) AS rows,
    sum(h) AS h,
    coalesce(sum(CAST(m & CAST(18446744073709551615 AS UHUGEINT) AS HUGEINT)), 0) AS sum_lo,
    coalesce(sum(CAST(m >> 64 AS HUGEINT)), 0) AS sum_hi
FROM t
GROUP BY ALL
