-- Returns: up to $n rows of each change ('added', 'removed', 'changed') of a written diff, in its key order, as
--   JSON text (one object per row: its key columns, change, changed_columns, before_* and after_* values).
-- Reads: view diff_rows (a diff's --out parquet file read with file_row_number; withheld sensitive rows are
--   never in it).
-- params: $n
WITH d AS (
    SELECT *, row_number() OVER (PARTITION BY change ORDER BY file_row_number) AS relake_n FROM diff_rows
)
SELECT change, CAST(to_json(e) AS VARCHAR) AS row_json
FROM (SELECT * EXCLUDE (relake_n, file_row_number) FROM d WHERE relake_n <= $n ORDER BY change, relake_n) AS e
