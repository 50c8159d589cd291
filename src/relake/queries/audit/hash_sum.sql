-- Returns: per file of view src_files: file (its filename), rows and the sum (HUGEINT, no overflow below
--   ~10^19 rows) of DuckDB's hash() of every whole row (all columns but filename). 4x cheaper than the md5
--   fingerprint, but hash() is not stable across DuckDB versions: a manifest keeps these sums only tagged
--   with the DuckDB version (relake.fingerprint.ROW_HASH), and only the same version reuses them.
--   A file without rows has no row here.
-- Reads: view src_files (read with filename = true).
-- params: none
SELECT filename AS file, count(*) AS rows, coalesce(sum(CAST(hash(*COLUMNS(* EXCLUDE (filename))) AS HUGEINT)), 0) AS h
FROM src_files
GROUP BY filename
