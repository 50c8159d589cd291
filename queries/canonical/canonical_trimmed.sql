-- Returns: macro relake_canonical_trimmed(t): canonical_url of an already trimmed URL t. NULL when t
--   is NULL or empty; t itself when it does not start with a head 'scheme://authority' (scheme = a
--   letter, then letters, digits, '+', '-', '.'; authority = up to the first '/', '?' or '#');
--   else the canonical head (relake_head) and the canonical path and query (relake_path) of the
--   rest of t with its fragment cut (relake_cut_fragment).
-- Reads: nothing (a macro).
-- params: none
CREATE OR REPLACE TEMP MACRO relake_canonical_trimmed(t) AS list_transform(
    [t],
    lambda relake_t: list_transform(
        [regexp_extract(relake_t, '^[A-Za-z][A-Za-z0-9+.\-]*://[^/?#]*')],
        lambda relake_h: CASE
            WHEN relake_t IS NULL OR relake_t = '' THEN NULL
            WHEN relake_h = '' THEN relake_t
            ELSE relake_head(relake_h, strpos(relake_h, '://'))
                || relake_path(relake_cut_fragment(substr(relake_t, length(relake_h) + 1)))
        END
    )[1]
)[1]
