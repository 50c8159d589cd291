-- Returns: in one scan, fingerprint/buckets' rows (file NULL: bucket, rows, sum_lo, sum_hi, with the same md5
--   of each row) and, per file (bucket NULL), rows and h: the sum of DuckDB's hash() of every whole row, as
--   audit/hash_sum computes it (kept in an original's manifest so a build need not rehash the base).
-- Reads: view src_files (any columns, read with filename = true).
-- params: $names
WITH h AS (
    SELECT
        filename AS file,
        md5_number(CAST(json_array(*COLUMNS(* EXCLUDE (filename))) AS VARCHAR) || $names) AS m,
        CAST(hash(*COLUMNS(* EXCLUDE (filename))) AS HUGEINT) AS h
    FROM src_files
)
SELECT
    file,
    CAST(m & CAST(255 AS UHUGEINT) AS INTEGER) AS bucket,
    count(*) AS rows,
    sum(CAST(m & CAST(18446744073709551615 AS UHUGEINT) AS HUGEINT)) AS sum_lo,
    sum(CAST(m >> 64 AS HUGEINT)) AS sum_hi,
    sum(h) AS h
FROM h
GROUP BY GROUPING SETS ((file), (CAST(m & CAST(255 AS UHUGEINT) AS INTEGER)))
