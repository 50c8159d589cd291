-- Returns: the rows of temp table hits of one copy shard (a check task run on an engine), by position:
--   pos, key, status, error, by_url, by_image, not_kept, loose_url, loose_caption (the driver adds the
--   shard's file back).
-- Reads: temp table hits.
-- params: none
SELECT pos, key, status, error, by_url, by_image, not_kept, loose_url, loose_caption
FROM hits
ORDER BY pos
