-- Returns: macro relake_canonical_trimmed(t): canonical_url of an already trimmed URL t (a bound
--   lambda parameter, cheap to repeat). NULL when t is NULL or empty; t itself when it does not
--   start with a head 'scheme://authority' (authority = up to the first '/', '?' or '#'); else the
--   canonical head (relake_head) and the canonical path and query (relake_path) of the rest of t
--   with its fragment cut (relake_cut_fragment).
-- Reads: nothing (a macro).
-- params: none
CREATE OR REPLACE TEMP MACRO relake_canonical_trimmed(t) AS list_transform(
    [regexp_extract(t, '^[A-Za-z][A-Za-z0-9+.\-]*://[^/?#]*')],
    lambda relake_h: CASE
        WHEN t IS NULL OR t = '' THEN NULL
        WHEN relake_h = '' THEN t
        ELSE relake_head(relake_h, strpos(relake_h, '://'))
            || list_transform(
                [relake_cut_fragment(substr(t, length(relake_h) + 1))],
                lambda relake_r: relake_path(relake_r)
            )[1]
    END
)[1]
