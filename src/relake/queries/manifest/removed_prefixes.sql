-- Returns: h32, the first 32 bits (as UINTEGER) of each distinct canonical-URL sha256 of the removed rows: what
--   the URL cache holds per row (cache/write_url_cache), to pick the kept rows that may share a removed row's URL.
-- Reads: view removed_all (url_sha256: 64 lower-case hex digits, or NULL).
-- params: none
SELECT DISTINCT TRY_CAST('0x' || url_sha256[1:8] AS UINTEGER) AS h32
FROM removed_all
WHERE url_sha256 IS NOT NULL
