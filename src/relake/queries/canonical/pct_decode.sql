-- Returns: macro relake_pct_decode(s): s with the escapes of ordinary characters decoded: every
--   printable ASCII character (0x21-0x7E) but the RFC 3986 reserved ones ': / ? # [ ] @ ! $ & ' ( ) *
--   + , ; =' and '%', i.e. escapes 22 2D 2E 30-39 3C 3E 41-5A 5C 5E 5F 60 61-7A 7B-7E; other escapes
--   kept. Only for strings whose every '%' starts a valid escape with upper-case hex digits: each
--   escape to keep is first protected as '%25XY', then one url_decode() turns '%25' back into '%'
--   and decodes the rest (ASCII only: never '+' to space, never invalid UTF-8).
-- Reads: nothing (a macro).
-- params: none
CREATE OR REPLACE TEMP MACRO relake_pct_decode(s) AS url_decode(
    regexp_replace(s, '%([01][0-9A-F]|2[013-9A-CF]|3[ABDF]|40|5[BD]|7F|[89A-F][0-9A-F])', '%25\1', 'g')
)
