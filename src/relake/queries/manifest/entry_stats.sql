-- Returns: one row: removed rows listed by their whole URL, by URL and caption, by URL, caption and id, and
--   the kept rows that key entries also match (same URL, caption and id as a removed row: the id does not
--   tell them apart, so a copy loses them too).
-- Reads: temp table entries.
-- params: none
SELECT
    count(*) FILTER (WHERE match = 'url'),
    count(*) FILTER (WHERE match = 'caption'),
    count(*) FILTER (WHERE match = 'key'),
    (SELECT coalesce(sum(kept_twins), 0) FROM (SELECT DISTINCT key_sha256, kept_twins FROM entries
                                                 WHERE match = 'key'))
FROM entries
