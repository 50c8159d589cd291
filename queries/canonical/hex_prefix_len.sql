-- Returns: macro relake_hex_prefix_len(x): how many of the first two characters of x are hex digits
--   in a row from the start: 0, 1 or 2 (2 means x starts with a complete percent-escape's digits).
-- Reads: nothing (a macro).
-- params: none
CREATE OR REPLACE TEMP MACRO relake_hex_prefix_len(x) AS
CASE
    WHEN x = '' OR strpos('0123456789ABCDEFabcdef', left(x, 1)) = 0 THEN 0
    WHEN strlen(x) = 1 OR strpos('0123456789ABCDEFabcdef', substr(x, 2, 1)) = 0 THEN 1
    ELSE 2
END
