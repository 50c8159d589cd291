-- Returns: nothing; creates temp table removed_full: every row of table removed with the key, canonical URL
--   sha256, URL and caption fetched by audit/base_split, by shard and position (written as removed.parquet).
-- Reads: tables removed, shard_files, base_split.
-- params: none
CREATE OR REPLACE TEMP TABLE removed_full AS
SELECT
    r.shard, r.position, c.key, url_sha256(c.url) AS url_sha256, c.url, c.caption,
    r.rules, r.hows, r.categories, r.sensitive, r.image_hash
FROM removed AS r
JOIN shard_files AS sf USING (shard)
JOIN (SELECT unnest(f) FROM (SELECT unnest(fetched) AS f FROM base_split WHERE removed)) AS c
    ON c.file = sf.file AND c.pos = r.position
ORDER BY r.shard, r.position
