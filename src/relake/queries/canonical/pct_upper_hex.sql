-- Returns: macro relake_pct_upper_hex(s): s with the hex digits of every escape upper-cased
--   (%2f -> %2F, %c3%a9 -> %C3%A9): first digits by replace(), second digits by regexp_replace.
--   Only for strings whose every '%' starts a valid escape (see relake_path_query), so that
--   '%a' is always the start of an escape.
-- Reads: nothing (a macro).
-- params: none
CREATE OR REPLACE TEMP MACRO relake_pct_upper_hex(s) AS
regexp_replace(regexp_replace(regexp_replace(regexp_replace(regexp_replace(regexp_replace(replace(replace(replace(replace(replace(replace(s
    , '%a', '%A')
    , '%b', '%B')
    , '%c', '%C')
    , '%d', '%D')
    , '%e', '%E')
    , '%f', '%F')
    , '%([0-9A-F])a', '%\1A', 'g')
    , '%([0-9A-F])b', '%\1B', 'g')
    , '%([0-9A-F])c', '%\1C', 'g')
    , '%([0-9A-F])d', '%\1D', 'g')
    , '%([0-9A-F])e', '%\1E', 'g')
    , '%([0-9A-F])f', '%\1F', 'g')
