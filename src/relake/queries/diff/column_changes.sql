-- Returns: one row per compared column changed in at least one row: column name and rows changed, most
--   changed first.
-- Reads: TEMP TABLE d (from diff/keyed).
-- params: none
SELECT c AS column_name, count(*) AS rows
FROM d, unnest(changed_columns) AS t(c)
GROUP BY c
ORDER BY rows DESC, column_name
