-- Returns: nothing; creates TEMP TABLE d with one row per differing key: k, change ('added' | 'removed' |
--   'changed'), changed_columns (names of the compared columns whose values differ, in $columns order),
--   n (always 1), a_r and b_r (the compared values on each side, NULL for the absent side), f (A's file
--   index). Only the candidate keys of TEMP TABLE dk (from diff/keyed_keys) are fetched back from each side
--   (semi-joins on the small dk), then compared exactly: a candidate whose values are not distinct is
--   dropped. The per-column comparison (JSON text of each value, NULL-safe) runs only on these rows.
-- Reads: views a (k, r, f) and b (k, r), TEMP TABLE dk.
-- params: $columns, $pointers
CREATE OR REPLACE TEMP TABLE d AS
WITH ra AS (
    SELECT k, r FROM a WHERE k IN (SELECT k FROM dk WHERE change <> 'added')
),
rb AS (
    SELECT k, r FROM b WHERE k IN (SELECT k FROM dk WHERE change <> 'removed')
),
j AS (
    SELECT dk.k, dk.change, ra.r AS a_r, rb.r AS b_r, dk.f
    FROM dk
    LEFT JOIN ra ON dk.k = ra.k
    LEFT JOIN rb ON dk.k = rb.k
    WHERE dk.change <> 'changed' OR ra.r IS DISTINCT FROM rb.r
)
SELECT
    k,
    change,
    CASE
        WHEN change <> 'changed' THEN CAST([] AS VARCHAR[])
        ELSE list_transform(
            list_filter(
                list_zip(
                    CAST($columns AS VARCHAR[]),
                    json_extract(to_json(a_r), CAST($pointers AS VARCHAR[])),
                    json_extract(to_json(b_r), CAST($pointers AS VARCHAR[]))
                ),
                lambda x: x[2] IS DISTINCT FROM x[3]
            ),
            lambda x: x[1]
        )
    END AS changed_columns,
    CAST(1 AS BIGINT) AS n,
    a_r,
    b_r,
    f
FROM j
