-- Returns: macro relake_pct_part(x, guarded): x is the text after one '%'; returns '%' || x with the
--   escape in canonical form. No escape (x does not start with two hex digits): '%' || x as is.
--   An escape of an unreserved character (A-Z a-z 0-9 - . _ ~) is decoded, unless guarded and the
--   character is a hex digit; any other escape keeps '%' and gets its digits upper-cased.
--   guarded: the part before this '%' is a '%' not starting an escape, followed by at most one hex
--   digit; decoding a hex digit there could create a new escape (see CANONICAL_RULE).
-- Reads: nothing (a macro).
-- params: none
CREATE OR REPLACE TEMP MACRO relake_pct_part(x, guarded) AS
CASE
    WHEN relake_hex_prefix_len(x) < 2 THEN '%' || x
    ELSE relake_pct_code(CAST('0x' || left(x, 2) AS INTEGER), guarded) || substr(x, 3)
END
