-- Returns: macro relake_path_query(t): for a trimmed URL t starting with 'scheme://authority', the
--   path and query in canonical form: relake_rest(t) (up to the first '#'), with '/' in front when
--   the path is empty, and percent-escapes normalised; all else byte for byte. Escapes are only
--   touched when t has one that changes (lower-case hex digit, or an unreserved character). When
--   every '%' of t starts a valid escape: hex digits upper-cased (relake_pct_upper_hex, only if t has
--   a lower-case one) and unreserved ones decoded (relake_pct_decode); otherwise the general, slower
--   relake_pct_normalize_guarded. The checks look at all of t; a false alarm is harmless.
-- Reads: nothing (a macro).
-- params: none
CREATE OR REPLACE TEMP MACRO relake_path_query(t) AS
CASE WHEN regexp_matches(t, '^[A-Za-z][A-Za-z0-9+.\-]*://[^/?#]*(?:[?#]|$)') THEN '/' ELSE '' END
|| CASE
    WHEN NOT contains(t, '%')
        OR NOT regexp_matches(t, '%(?:[0-9A-Fa-f][a-f]|[a-f][0-9A-F]|2[DE]|3[0-9]|[46][1-9A-F]|[57][0-9A]|5F|7E)')
        THEN relake_rest(t)
    WHEN regexp_matches(t, '%(?:[^0-9A-Fa-f]|[0-9A-Fa-f](?:[^0-9A-Fa-f]|$)|$)')
        THEN relake_pct_normalize_guarded(relake_rest(t))
    WHEN regexp_matches(t, '%[0-9A-F]?[a-f]')
        THEN relake_pct_decode(relake_pct_upper_hex(relake_rest(t)))
    ELSE relake_pct_decode(relake_rest(t))
END
