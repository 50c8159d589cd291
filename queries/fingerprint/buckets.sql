-- Returns: one row per non-empty bucket (0..255): bucket, rows, and the sums (as HUGEINT) of the two
--   64-bit halves of each row's md5 over DuckDB's JSON rendering of the whole row
--   (hi = first 8 digest bytes little-endian, lo = last 8; bucket = first digest byte).
-- Reads: view src (any columns).
-- params: none
WITH h AS (
    SELECT
        md5_number_upper(CAST(to_json(src) AS VARCHAR)) AS hi,
        md5_number_lower(CAST(to_json(src) AS VARCHAR)) AS lo
    FROM src
)
SELECT
    CAST(hi & 255 AS INTEGER) AS bucket,
    count(*) AS rows,
    sum(CAST(hi AS HUGEINT)) AS sum_hi,
    sum(CAST(lo AS HUGEINT)) AS sum_lo
FROM h
GROUP BY ALL
ORDER BY bucket
