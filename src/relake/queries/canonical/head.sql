-- Returns: macro relake_head(t): for a trimmed URL t starting with 'scheme://', its head
--   'scheme://authority' (authority = up to the first '/', '?' or '#') in canonical form. A head
--   with an ASCII authority without '@' or ':' is just lower-cased; otherwise the scheme is
--   lower-cased and the authority goes to relake_authority.
-- Reads: nothing (a macro).
-- params: none
CREATE OR REPLACE TEMP MACRO relake_head(t) AS
CASE
    WHEN regexp_matches(t, '^[A-Za-z][A-Za-z0-9+.\-]*://[^/?#@:\x80-\x{10FFFF}]*(?:[/?#]|$)')
        THEN lower(regexp_extract(t, '^[A-Za-z][A-Za-z0-9+.\-]*://[^/?#]*'))
    ELSE lower(regexp_extract(t, '^([A-Za-z][A-Za-z0-9+.\-]*)://', 1)) || '://' || relake_authority(
        regexp_extract(t, '^[A-Za-z][A-Za-z0-9+.\-]*://([^/?#]*)', 1),
        lower(regexp_extract(t, '^([A-Za-z][A-Za-z0-9+.\-]*)://', 1))
    )
END
