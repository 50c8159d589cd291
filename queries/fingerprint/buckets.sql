-- Returns: one row per non-empty bucket: bucket (0..255), rows, and the sums (HUGEINT) of the low and
--   high 64-bit halves of each row's hash H = md5(DuckDB JSON of the whole row) read as a little-endian
--   128-bit integer; bucket = first md5 digest byte. Python adds them up mod 2^128.
-- Reads: view src (any columns).
-- params: none
WITH h AS (
    SELECT md5_number(CAST(to_json(src) AS VARCHAR)) AS m
    FROM src
)
SELECT
    CAST(m & CAST(255 AS UHUGEINT) AS INTEGER) AS bucket,
    count(*) AS rows,
    sum(CAST(m & CAST(18446744073709551615 AS UHUGEINT) AS HUGEINT)) AS sum_lo,
    sum(CAST(m >> 64 AS HUGEINT)) AS sum_hi
FROM h
GROUP BY ALL
ORDER BY bucket
