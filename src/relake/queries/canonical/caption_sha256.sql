-- Returns: macro caption_sha256(uh, c): what identifies the rows of one URL with one caption: lower-case hex
--   sha256 of the UTF-8 bytes of 'relake.caption/1', a newline, uh (the URL's 64-digit url_sha256), then 'N'
--   for a NULL caption or 'S' and the caption as is; NULL when uh is NULL. uh has a fixed length and the
--   caption runs to the end, so the encoding is unambiguous.
-- Reads: nothing (a macro).
-- params: none
CREATE OR REPLACE TEMP MACRO caption_sha256(uh, c) AS
CASE WHEN uh IS NOT NULL THEN
    sha256('relake.caption/1' || chr(10) || uh || CASE WHEN c IS NULL THEN 'N' ELSE 'S' || CAST(c AS VARCHAR) END)
END
