-- Returns: nothing; writes view diff_out to the CSV file $path (with a header), sorted by all columns.
-- Reads: view diff_out.
-- params: $path
COPY (SELECT * FROM diff_out ORDER BY ALL) TO $path (FORMAT csv, HEADER true)
