-- Returns: macro relake_path_query(t): for a trimmed URL t starting with 'scheme://authority', the
--   path and query in canonical form: the text after the authority up to the first '#' (when there
--   is a '#', trailing whitespace before it is trimmed too); '/' in front when the path is empty;
--   percent-escapes normalised by relake_pct_normalize, which only runs when t has an escape that
--   would change (a lower-case hex digit, or an unreserved character); all else byte for byte.
-- Reads: nothing (a macro).
-- params: none
CREATE OR REPLACE TEMP MACRO relake_path_query(t) AS
CASE WHEN regexp_matches(t, '^[A-Za-z][A-Za-z0-9+.\-]*://[^/?#]*(?:[?#]|$)') THEN '/' ELSE '' END
|| CASE
    WHEN contains(t, '%')
        AND regexp_matches(t, '%(?:[0-9A-Fa-f][a-f]|[a-f][0-9A-F]|2[DE]|3[0-9]|[46][1-9A-F]|[57][0-9A]|5F|7E)')
        THEN relake_pct_normalize(relake_rest(t))
    ELSE relake_rest(t)
END
