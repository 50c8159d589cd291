-- Returns: nothing; inserts into hits the rows the per-shard check tasks matched (copies/shard_hits, each
--   with its shard's file as bound in view copy_rows).
-- Reads: view shard_hits(file, pos, key, status, error, by_url, by_image, not_kept, loose_url, loose_caption).
-- params: none
INSERT INTO hits
SELECT file, pos, key, status, error, by_url, by_image, not_kept, loose_url, loose_caption
FROM shard_hits
