-- Returns: the first $n rows of view base in file order (file name, then row number), without the bookkeeping
--   columns.
-- Reads: view base (the version's columns plus filename, file_row_number).
-- params: $n
SELECT * EXCLUDE (filename, file_row_number)
FROM base
ORDER BY filename, file_row_number
LIMIT $n
