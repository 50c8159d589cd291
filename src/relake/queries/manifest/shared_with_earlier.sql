-- Returns: the earlier publications (not in $new) that share a removed row with a new one, sorted: what a new
--   publication's rows can be set against.
-- Reads: view published(pub, url_sha256, caption_sha256, key_sha256, ...).
-- params: $new
SELECT DISTINCT o.pub
FROM published AS o
SEMI JOIN (SELECT url_sha256, caption_sha256, key_sha256 FROM published WHERE list_contains($new, pub)) AS n
    ON n.url_sha256 = o.url_sha256 AND n.caption_sha256 IS NOT DISTINCT FROM o.caption_sha256
    AND n.key_sha256 IS NOT DISTINCT FROM o.key_sha256
WHERE NOT list_contains($new, o.pub)
ORDER BY o.pub
