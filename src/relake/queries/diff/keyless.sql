-- Returns: nothing; creates TEMP TABLE d with one row per distinct row whose number of copies differs:
--   k (NULL: keyless), change ('removed' when A holds more copies, else 'added'), changed_columns (empty),
--   n (how many more copies), a_r / b_r (the row, on the side holding more copies; NULL on the other),
--   f (file index in A of one copy). Duplicates count: a row twice in A and once in B is removed once.
--   One hash aggregate grouped by the whole row (exact), over only the rows whose hash bucket
--   (hash(r) & $mask) differs in TEMP TABLE dg (from diff/keyless_buckets: na <> nb or m <> 0; a semi-join
--   on the few differing buckets).
-- Reads: views a (r, f) and b (r), TEMP TABLE dg.
-- params: $mask
CREATE OR REPLACE TEMP TABLE d AS
WITH cand AS (
    SELECT g AS bucket FROM dg WHERE na <> nb OR m <> 0
),
g AS (
    SELECT r, sum(ia) AS na, sum(ib) AS nb, any_value(f) AS f
    FROM (
        SELECT r, 1 AS ia, 0 AS ib, f FROM a WHERE hash(r) & $mask IN (SELECT bucket FROM cand)
        UNION ALL
        SELECT r, 0 AS ia, 1 AS ib, NULL AS f FROM b WHERE hash(r) & $mask IN (SELECT bucket FROM cand)
    )
    GROUP BY r
    HAVING sum(ia) <> sum(ib)
)
SELECT
    CAST(NULL AS INTEGER) AS k,
    CASE WHEN na > nb THEN 'removed' ELSE 'added' END AS change,
    CAST([] AS VARCHAR[]) AS changed_columns,
    CAST(abs(na - nb) AS BIGINT) AS n,
    CASE WHEN na > nb THEN r END AS a_r,
    CASE WHEN na > nb THEN NULL ELSE r END AS b_r,
    CASE WHEN na > nb THEN f END AS f
FROM g
