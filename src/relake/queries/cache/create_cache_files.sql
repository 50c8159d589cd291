-- Returns: nothing; creates the table mapping each URL cache file (as DuckDB reports its name) to the base file
--   (as view rows reports it) whose rows it describes, position for position.
-- Reads: nothing.
-- params: none
CREATE OR REPLACE TEMP TABLE cache_files (cache_file VARCHAR, file VARCHAR)
