-- Returns: one row per distinct length of the non-NULL image hash values of view copy_rows (column img):
--   len, rows, and hex (true when every value of that length is hexadecimal), longest first; what tells the
--   hash algorithm of a column named with --image-col whose name does not (md5 32, sha1 40, sha256 64).
-- Reads: view copy_rows.
-- params: none
SELECT length(img) AS len, count(*) AS rows, bool_and(regexp_full_match(img, '[0-9a-fA-F]+')) AS hex
FROM copy_rows
WHERE img IS NOT NULL AND img <> ''
GROUP BY len
ORDER BY len DESC
