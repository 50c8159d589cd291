-- Returns: macro key_sha256(ch, k): what identifies one row among rows of one URL and caption: lower-case hex
--   sha256 of the UTF-8 bytes of 'relake.key/1', a newline, ch (the 64-digit caption_sha256), then 'N' for a
--   NULL id or 'S' and key_text(k); NULL when ch is NULL.
-- Reads: nothing (a macro); needs key_text.
-- params: none
CREATE OR REPLACE TEMP MACRO key_sha256(ch, k) AS
CASE WHEN ch IS NOT NULL THEN
    sha256('relake.key/1' || chr(10) || ch || CASE WHEN k IS NULL THEN 'N' ELSE 'S' || key_text(k) END)
END
