-- Returns: the distinct entries of a blocklist being imported, in ascending binary order (the byte order
--   of their UTF-8 text; DuckDB's default collation), one column `entry`.
-- Reads: view raw_entries (entry VARCHAR, already normalised, no NULLs, may repeat).
-- params: none
SELECT DISTINCT entry
FROM raw_entries
ORDER BY entry
