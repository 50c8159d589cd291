-- Returns: nothing; writes view diff_out to $path as JSON lines (one object per row), sorted by all columns.
-- Reads: view diff_out.
-- params: $path
COPY (SELECT * FROM diff_out ORDER BY ALL) TO $path (FORMAT json)
