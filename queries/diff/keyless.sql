-- Returns: nothing; creates TEMP TABLE d with one row per distinct row hash whose multiplicity differs:
--   k (the row hash), change ('removed' when A holds more copies, else 'added'), changed_columns (empty),
--   n (how many more copies), a_r / b_r (the row on the side holding more copies, NULL on the other),
--   f (file index in A of one copy). Duplicates count: a row twice in A and once in B is removed once.
-- Reads: views a (h, r, f) and b (h, r); h = md5 of the row's JSON as a 128-bit number.
-- params: none
CREATE OR REPLACE TEMP TABLE d AS
WITH ga AS (
    SELECT h, count(*) AS n, any_value(r) AS r, any_value(f) AS f FROM a GROUP BY h
),
gb AS (
    SELECT h, count(*) AS n, any_value(r) AS r FROM b GROUP BY h
),
j AS (
    SELECT coalesce(ga.h, gb.h) AS h, coalesce(ga.n, 0) AS na, coalesce(gb.n, 0) AS nb, ga.r AS ra, gb.r AS rb,
        ga.f AS f
    FROM ga
    FULL OUTER JOIN gb ON ga.h = gb.h
    WHERE ga.n IS DISTINCT FROM gb.n
)
SELECT
    h AS k,
    CASE WHEN na > nb THEN 'removed' ELSE 'added' END AS change,
    CAST([] AS VARCHAR[]) AS changed_columns,
    abs(na - nb) AS n,
    CASE WHEN na > nb THEN ra END AS a_r,
    CASE WHEN na > nb THEN NULL ELSE rb END AS b_r,
    CASE WHEN na > nb THEN f END AS f
FROM j
