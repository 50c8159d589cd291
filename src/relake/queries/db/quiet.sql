-- Returns: nothing; turns DuckDB's own progress bar off (it draws on stdout, which carries results).
-- Reads: nothing.
-- params: none
SET enable_progress_bar = false
