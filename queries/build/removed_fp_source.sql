-- Returns: nothing; view src over the base rows that were removed (original columns only), so the
--   fingerprint query can sum them for the subset audit.
-- Reads: view base, tables removed, shard_files.
-- params: none
CREATE OR REPLACE VIEW src AS
SELECT b.* EXCLUDE (filename, file_row_number)
FROM base AS b
SEMI JOIN (SELECT sf.file, r.position FROM removed AS r JOIN shard_files AS sf USING (shard)) AS x
    ON x.file = b.filename AND x.position = b.file_row_number
