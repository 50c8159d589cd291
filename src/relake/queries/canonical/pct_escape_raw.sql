-- Returns: macro relake_pct_escape_raw(s): s (a path and query) with its percent-escapes brought
--   into rule-9 form in one url_decode: an escape of an ordinary character (relake_pct_decode's list)
--   decoded, every other valid escape kept as typed (digit case included), a '%' that does not start
--   a valid escape as '%25', and every raw byte <= 0x20 or >= 0x7F (spaces, controls, the UTF-8 bytes
--   of non-ASCII characters) as '%XX'; all else unchanged.
--   How: url_encode(s) escapes every byte but A-Z a-z 0-9 - . _ ~ (hex digits stay literal, so a '%'
--   of s is '%25' followed by what followed it). Pass 1 turns '%25' + the two hex digits of an
--   ordinary character's escape into '%XY' (url_decode then decodes it). Pass 2 protects, as '%25...',
--   what url_decode must leave escaped: '%25' + two other hex digits (an escape of s, kept), a lone
--   '%25' (an invalid '%' of s, kept as '%25') and '%XY' of a byte <= 0x20 or >= 0x7F; the other
--   escapes url_encode made are of printable ASCII bytes, which url_decode restores. url_decode thus
--   only ever decodes ASCII bytes: never invalid UTF-8. Hex digits of kept escapes may still be
--   lower-case (relake_pct_upper_hex follows).
-- Reads: nothing (a macro).
-- params: none
CREATE OR REPLACE TEMP MACRO relake_pct_escape_raw(s) AS url_decode(
    regexp_replace(
        regexp_replace(
            url_encode(s),
            '%25(2[2DEde]|3[0-9CEce]|4[1-9A-Fa-f]|5[0-9ACEFacef]|6[0-9A-Fa-f]|7[0-9A-Ea-e])',
            '%\1',
            'g'
        ),
        '%(?:25([0-9A-Fa-f][0-9A-Fa-f])|([01][0-9A-F]|20|7F|[89A-F][0-9A-F]|25))',
        '%25\1\2',
        'g'
    )
)
