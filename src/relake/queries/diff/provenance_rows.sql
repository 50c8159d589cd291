-- Returns: one row: how many removed rows the removed.parquet files record.
-- Reads: view prov.
-- params: none
SELECT count(*) AS rows FROM prov
