-- Returns: macro relake_pct_decode(s): s with the escapes of unreserved characters (A-Z a-z 0-9
--   - . _ ~) decoded, other escapes kept. Only for strings whose every '%' starts a valid escape with
--   upper-case hex digits: each other escape is first protected as '%25XY', then one url_decode()
--   turns '%25' back into '%' and decodes the unreserved ones (never '+', never invalid UTF-8).
-- Reads: nothing (a macro).
-- params: none
CREATE OR REPLACE TEMP MACRO relake_pct_decode(s) AS url_decode(
    regexp_replace(s, '%([01][0-9A-F]|2[0-9A-CF]|3[A-F]|40|5[B-E]|60|7[B-DF]|[89A-F][0-9A-F])', '%25\1', 'g')
)
