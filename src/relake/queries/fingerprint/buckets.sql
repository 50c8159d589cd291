-- Returns: one row per non-empty bucket: bucket (0..255), rows, and the sums (HUGEINT) of the low and
--   high 64-bit halves of each row's hash H = md5(DuckDB's JSON array of the row's values, in column
--   order, followed by $names: a unit separator and the JSON array of the column names) read as a
--   little-endian 128-bit integer; bucket = first md5 digest byte. Python adds them up mod 2^128.
-- Reads: view src (any columns).
-- params: $names
WITH h AS (
    SELECT md5_number(CAST(json_array(*COLUMNS(*)) AS VARCHAR) || $names) AS m
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
