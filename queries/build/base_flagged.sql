-- Returns: nothing; view base_flagged: every base row (its own columns only) with relake_removed telling
--   whether the build removed it, so one scan of the base feeds both audit sums and the removed rows' md5.
-- Reads: view base, tables removed, shard_files.
-- params: none
CREATE OR REPLACE VIEW base_flagged AS
SELECT b.* EXCLUDE (filename, file_row_number), x.position IS NOT NULL AS relake_removed
FROM base AS b
LEFT JOIN (SELECT sf.file, r.position FROM removed AS r JOIN shard_files AS sf USING (shard)) AS x
    ON x.file = b.filename AND x.position = b.file_row_number
