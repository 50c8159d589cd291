-- Returns: macro relake_path_query(t): for a trimmed URL t starting with 'scheme://authority', the
--   path and query in canonical form (rule 7 of relake.canonical): relake_rest(t) (up to the first
--   '#'), with '/' in front when the path is empty, its percent-escapes and raw bytes normalised.
--   Untouched when t has no raw byte <= 0x20 or >= 0x7F (non-ASCII: strlen <> length) and every '%'
--   starts an escape already in canonical form (upper-case; of a reserved character, '#', '%' or a
--   byte <= 0x20 or >= 0x7F). Otherwise, by what t holds:
--   - a '%' not starting a valid escape (rare): relake_pct_escape_raw, which does all but upper-casing
--     hex digits, then relake_pct_upper_hex when t has a lower-case one;
--   - raw bytes to escape: relake_pct_escape_bytes, then relake_pct_upper_hex when t has a lower-case
--     hex digit after a '%', then relake_pct_decode when t has an escape of an ordinary character;
--   - only escapes: relake_pct_upper_hex when needed, then relake_pct_decode.
--   Each step only runs where it may change something (the regexp_replace passes cost more than the
--   rest together). The checks look at all of t; a false alarm is harmless.
-- Reads: nothing (a macro).
-- params: none
CREATE OR REPLACE TEMP MACRO relake_path_query(t) AS
CASE WHEN regexp_matches(t, '^[A-Za-z][A-Za-z0-9+.\-]*://[^/?#]*(?:[?#]|$)') THEN '/' ELSE '' END
|| CASE
    WHEN strlen(t) = length(t) AND NOT regexp_matches(t, '[\x00-\x20\x7F]') THEN
        CASE
            WHEN NOT contains(t, '%') OR NOT regexp_matches(
                t, '%(?:[^0-9A-F]|[0-9A-F](?:[^0-9A-F]|$)|$|2[2DE]|3[0-9CE]|4[1-9A-F]|5[0-9ACEF]|6[0-9A-F]|7[0-9A-E])'
            ) THEN relake_rest(t)
            WHEN regexp_matches(t, '%(?:[^0-9A-Fa-f]|[0-9A-Fa-f](?:[^0-9A-Fa-f]|$)|$)') THEN
                CASE
                    WHEN regexp_matches(t, '%[0-9A-Fa-f]?[a-f]')
                        THEN relake_pct_upper_hex(relake_pct_escape_raw(relake_rest(t)))
                    ELSE relake_pct_escape_raw(relake_rest(t))
                END
            WHEN regexp_matches(t, '%[0-9A-F]?[a-f]') THEN relake_pct_decode(relake_pct_upper_hex(relake_rest(t)))
            ELSE relake_pct_decode(relake_rest(t))
        END
    WHEN NOT contains(t, '%') THEN relake_pct_escape_bytes(relake_rest(t))
    WHEN regexp_matches(t, '%(?:[^0-9A-Fa-f]|[0-9A-Fa-f](?:[^0-9A-Fa-f]|$)|$)') THEN
        CASE
            WHEN regexp_matches(t, '%[0-9A-Fa-f]?[a-f]')
                THEN relake_pct_upper_hex(relake_pct_escape_raw(relake_rest(t)))
            ELSE relake_pct_escape_raw(relake_rest(t))
        END
    WHEN regexp_matches(t, '%(?:2[2DEde]|3[0-9CEce]|4[1-9A-Fa-f]|5[0-9ACEFacef]|6[0-9A-Fa-f]|7[0-9A-Ea-e])') THEN
        CASE
            WHEN regexp_matches(t, '%[0-9A-Fa-f]?[a-f]')
                THEN relake_pct_decode(relake_pct_upper_hex(relake_pct_escape_bytes(relake_rest(t))))
            ELSE relake_pct_decode(relake_pct_escape_bytes(relake_rest(t)))
        END
    WHEN regexp_matches(t, '%[0-9A-Fa-f]?[a-f]') THEN relake_pct_upper_hex(relake_pct_escape_bytes(relake_rest(t)))
    ELSE relake_pct_escape_bytes(relake_rest(t))
END
