-- Returns: nothing; creates temp table removed_full: every row of table removed with its key, canonical URL
--   sha256, URL and caption read from the base, by shard and position (written as removed.parquet). It reads
--   split_input (every base row, or only the removed ones): the position filter lets the parquet reader decode
--   those columns only at removed positions; the join (which can spill) keeps the exact (file, position) pairs.
-- Reads: tables removed, shard_files, split_input (view or table, see build/split_input_*).
-- params: none
CREATE OR REPLACE TEMP TABLE removed_full AS
SELECT
    r.shard, r.position, c.relake_id AS key, url_sha256(c.relake_url) AS url_sha256, c.relake_url AS url,
    c.relake_caption AS caption, r.rules, r.hows, r.categories, r.sensitive, r.image_hash
FROM removed AS r
JOIN shard_files AS sf USING (shard)
JOIN (
    SELECT relake_file, relake_pos, relake_id, relake_url, relake_caption
    FROM split_input
    WHERE relake_pos IN (SELECT position FROM removed) AND relake_removed
) AS c ON c.relake_file = sf.file AND c.relake_pos = r.position
ORDER BY r.shard, r.position
