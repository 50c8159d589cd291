-- Returns: nothing; writes to the parquet file $path the keys of TEMP TABLE dk whose rows one side must
--   fetch: every differing key but those of change $skip ('added' for A, which lacks them; 'removed' for B).
--   Each fetch task of the distributed keyed diff reads it (diff/shuffle_fetch).
-- Reads: TEMP TABLE dk.
-- params: $skip, $path
COPY (SELECT k FROM dk WHERE change <> $skip) TO $path (FORMAT parquet)
