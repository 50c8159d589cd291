-- Returns: the first $n rows of view base (in file order: file name, then row number) for which the predicate is
--   true (NULL counts as false), without the bookkeeping columns. The slot below takes predicate.select_text(where),
--   the very text predicate.check_where parsed and vetted (as build/match_where.sql does); never a value.
-- Reads: view base (the version's columns plus filename, file_row_number).
-- params: $n
SELECT b.* EXCLUDE (filename, file_row_number)
FROM base AS b
SEMI JOIN (/*PREDICATE*/ SELECT FALSE AS relake_p, filename, file_row_number FROM base) AS p
    ON p.filename = b.filename AND p.file_row_number = b.file_row_number AND coalesce(p.relake_p, FALSE)
ORDER BY b.filename, b.file_row_number
LIMIT $n
