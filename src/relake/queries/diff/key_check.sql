-- Returns: one row per side ('a', 'b') of the key views: dup_keys (distinct non-NULL keys on more than one
--   row), dup_rows (rows carrying them), null_rows (rows whose key has a NULL part) and up to 5 example
--   duplicated keys as JSON text (the most repeated first), and rows (all rows of the side: the grand total
--   grouping set, counted in the same scan).
-- Reads: views a_keys and b_keys (one column k: the key, a scalar or a STRUCT, NULL when any part is NULL).
-- params: none
WITH ga AS (
    SELECT k, count(*) AS n, grouping(k) = 1 AS total
    FROM a_keys
    GROUP BY GROUPING SETS ((k), ())
    HAVING count(*) > 1 OR k IS NULL
),
gb AS (
    SELECT k, count(*) AS n, grouping(k) = 1 AS total
    FROM b_keys
    GROUP BY GROUPING SETS ((k), ())
    HAVING count(*) > 1 OR k IS NULL
),
g AS (
    SELECT 'a' AS side, k, n, total FROM ga
    UNION ALL
    SELECT 'b' AS side, k, n, total FROM gb
),
ranked AS (
    SELECT side, k, n, row_number() OVER (PARTITION BY side ORDER BY n DESC, k) AS i
    FROM g
    WHERE k IS NOT NULL
)
SELECT
    s.side,
    coalesce((SELECT count(*) FROM g WHERE g.side = s.side AND g.k IS NOT NULL), 0) AS dup_keys,
    coalesce((SELECT sum(n) FROM g WHERE g.side = s.side AND g.k IS NOT NULL), 0) AS dup_rows,
    coalesce((SELECT sum(n) FROM g WHERE g.side = s.side AND g.k IS NULL AND NOT g.total), 0) AS null_rows,
    coalesce(
        (SELECT list(CAST(to_json(k) AS VARCHAR) ORDER BY i) FROM ranked WHERE ranked.side = s.side AND i <= 5),
        []
    ) AS examples,
    coalesce((SELECT sum(n) FROM g WHERE g.side = s.side AND g.total), 0) AS rows
FROM (VALUES ('a'), ('b')) AS s(side)
ORDER BY s.side
