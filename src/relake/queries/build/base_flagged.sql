-- Returns: nothing; view base_flagged: every base row (its own columns, then relake_file, relake_pos and the
--   role columns relake_url, relake_caption, relake_id) with relake_removed telling whether the build removed
--   it, so one scan of the base feeds both audit sums, the removed rows' md5 and their key, URL and caption.
-- Reads: views base_keyed, tables removed, shard_files.
-- params: none
CREATE OR REPLACE VIEW base_flagged AS
SELECT b.*, x.position IS NOT NULL AS relake_removed
FROM base_keyed AS b
LEFT JOIN (SELECT sf.file, r.position FROM removed AS r JOIN shard_files AS sf USING (shard)) AS x
    ON x.file = b.relake_file AND x.position = b.relake_pos
