-- Returns: macro relake_pct_escape_bytes(s): s with every byte <= 0x20 or >= 0x7F (space, controls,
--   DEL, the UTF-8 bytes of non-ASCII characters) written '%XX' (upper-case hex), and any '%5C'
--   escape decoded to a backslash (as rule 7 does); all else unchanged. Only for strings whose every
--   '%' starts a valid escape.
--   How: DuckDB renders a BLOB as text with each byte outside printable ASCII, and '\', '"' and
--   ''', as '\xHH' (upper-case), so every backslash of that text starts such a token: the ''' and '"'
--   tokens go back to their characters, the others become '%HH' (a backslash's '%5C' is then decoded,
--   with any '%5C' that s had), and spaces become '%20'. Much faster than url_encode and url_decode
--   around a pattern pass. (The tests hold this to the Python reference, should DuckDB's rendering
--   change.)
-- Reads: nothing (a macro).
-- params: none
CREATE OR REPLACE TEMP MACRO relake_pct_escape_bytes(s) AS
replace(
    replace(replace(replace(replace(CAST(encode(s) AS VARCHAR), '\x27', ''''), '\x22', '"'), '\x', '%'), '%5C', '\'),
    ' ',
    '%20'
)
