-- Returns: nothing; inserts into hits every copy row a manifest entry matches at the entry's level (by_url):
--   match 'url' by the canonical-URL sha256; 'caption' by caption_sha256 of (URL, caption); 'key' by
--   key_sha256 of (URL, caption, id). Without a caption column ($have_caption false) caption and key entries
--   match by URL alone (loose_url); without an id column ($have_key false) key entries match by URL and
--   caption (loose_caption); each counted when nothing exact matched the row. Also rows whose image hash
--   (lower-cased, trimmed) is a manifest image hash (by_image; only when $use_image: the copy's hash column and
--   the manifest's use the same algorithm).
-- Reads: views copy_rows(file, pos, key, url, caption, rid, status, error, img) and
--   man(match, url_sha256, caption_sha256, key_sha256, img); macros from canonical/.
-- params: $use_image, $have_caption, $have_key
INSERT INTO hits
SELECT file, pos, key, status, error, exact OR loose_u OR loose_c, by_image, false,
    loose_u AND NOT exact, loose_c AND NOT exact AND NOT loose_u
FROM (
    SELECT *,
        coalesce(uh IN (SELECT url_sha256 FROM man WHERE match = 'url'), false)
            OR coalesce(ch IN (SELECT caption_sha256 FROM man WHERE match = 'caption'), false)
            OR coalesce(kh IN (SELECT key_sha256 FROM man WHERE match = 'key'), false) AS exact,
        NOT $have_caption
            AND coalesce(uh IN (SELECT url_sha256 FROM man WHERE match IN ('caption', 'key')), false) AS loose_u,
        $have_caption AND NOT $have_key
            AND coalesce(ch IN (SELECT caption_sha256 FROM man WHERE match = 'key'), false) AS loose_c
    FROM (
        SELECT file, pos, key, status, error, uh, ch, CASE WHEN $have_key THEN key_sha256(ch, rid) END AS kh,
            coalesce(lower(trim(img)) IN (SELECT img FROM man WHERE $use_image AND img IS NOT NULL), false)
                AS by_image
        FROM (
            SELECT *, CASE WHEN $have_caption THEN caption_sha256(uh, caption) END AS ch
            FROM (SELECT *, url_sha256(url) AS uh FROM copy_rows)
        )
    )
)
WHERE exact OR loose_u OR loose_c OR by_image
