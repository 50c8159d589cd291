-- Returns: nothing; creates temp table entries: per removed row with a URL, the coarsest identity that is
--   still exact against the kept rows (the rows of the later version): match 'url' when no kept row has its
--   canonical URL (url_sha256 alone); 'caption' when kept rows have the URL but none its caption
--   (caption_sha256 too); else 'key' (key_sha256 too: URL, caption and row id). Also its public category
--   (the first of its sorted categories), the image hash (lower-cased) and the number of kept rows sharing
--   its key_sha256 (kept_twins: more than 0 only when the id does not tell them apart).
-- Reads: views removed_all (removed.parquet of every generation) and kept_rows(url, caption, id);
--   macros from canonical/.
-- params: none
CREATE OR REPLACE TEMP TABLE entries AS
WITH r AS (
    SELECT url_sha256, caption_sha256(url_sha256, caption) AS ch, categories[1] AS category,
        lower(image_hash) AS image_hash, key
    FROM removed_all
    WHERE url_sha256 IS NOT NULL
),
k AS (
    SELECT uh, caption_sha256(uh, caption) AS ch, id
    FROM (SELECT url_sha256(url) AS uh, caption, id FROM kept_rows)
    SEMI JOIN (SELECT DISTINCT url_sha256 FROM r) AS ru ON ru.url_sha256 = uh
),
rk AS (SELECT r.*, key_sha256(r.ch, r.key) AS kh FROM r),
kk AS (SELECT uh, ch, key_sha256(ch, id) AS kh FROM k)
SELECT
    CASE WHEN ku.uh IS NULL THEN 'url' WHEN kc.ch IS NULL THEN 'caption' ELSE 'key' END AS match,
    rk.url_sha256,
    CASE WHEN ku.uh IS NOT NULL THEN rk.ch END AS caption_sha256,
    CASE WHEN kc.ch IS NOT NULL THEN rk.kh END AS key_sha256,
    rk.category, rk.image_hash, coalesce(kt.n, 0) AS kept_twins
FROM rk
LEFT JOIN (SELECT DISTINCT uh FROM kk) AS ku ON ku.uh = rk.url_sha256
LEFT JOIN (SELECT DISTINCT ch FROM kk) AS kc ON kc.ch = rk.ch
LEFT JOIN (SELECT kh, count(*) AS n FROM kk GROUP BY kh) AS kt ON kt.kh = rk.kh AND kc.ch IS NOT NULL
