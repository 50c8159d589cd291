-- Returns: nothing; creates TEMP TABLE d with one row per differing key: k, change ('added' | 'removed' |
--   'changed'), changed_columns (names of the compared columns whose values differ, in $columns order),
--   n (always 1), a_r and b_r (the compared values on each side, NULL for the absent side), f (A's file
--   index). One FULL OUTER hash join on k (spills under the memory limit); the per-column comparison (JSON
--   text of each value, NULL-safe) runs only on the rows that differ.
-- Reads: views a (k, r, f) and b (k, r); keys are unique and non-NULL (checked before).
-- params: $columns, $pointers
CREATE OR REPLACE TEMP TABLE d AS
WITH j AS (
    SELECT a.k AS ak, b.k AS bk, a.r AS a_r, b.r AS b_r, a.f AS f
    FROM a
    FULL OUTER JOIN b ON a.k = b.k
    WHERE a.k IS NULL OR b.k IS NULL OR a.r IS DISTINCT FROM b.r
)
SELECT
    coalesce(ak, bk) AS k,
    CASE WHEN ak IS NULL THEN 'added' WHEN bk IS NULL THEN 'removed' ELSE 'changed' END AS change,
    CASE
        WHEN ak IS NULL OR bk IS NULL THEN CAST([] AS VARCHAR[])
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
