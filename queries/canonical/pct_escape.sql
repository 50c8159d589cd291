-- Returns: macro relake_pct_escape(hh, guarded): one percent-escape (hh = its two hex digits) in
--   canonical form: the character itself when it is unreserved (A-Z a-z 0-9 - . _ ~), else '%' and
--   the digits upper-cased. When guarded, an escape of a hex digit (0-9 A-F a-f) stays encoded.
--   Helper of relake_pct_normalize; see relake.canonical.CANONICAL_RULE.
-- Reads: nothing (a macro).
-- params: none
CREATE OR REPLACE TEMP MACRO relake_pct_escape(hh, guarded) AS
CASE
    WHEN regexp_full_match(hh, '2[dDeE]|3[0-9]|[46][1-9a-fA-F]|[57][0-9aA]|5[fF]|7[eE]')
        AND NOT (guarded AND regexp_full_match(hh, '3[0-9]|[46][1-6]'))
        THEN chr(CAST('0x' || hh AS INTEGER))
    ELSE '%' || upper(hh)
END
