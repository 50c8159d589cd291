-- Returns: macro relake_pct_code(c, guarded): the canonical text of the escape of byte c: chr(c)
--   when c is an unreserved character (A-Z a-z 0-9 - . _ ~) and not (guarded and c a hex digit),
--   else '%' and c as two upper-case hex digits.
-- Reads: nothing (a macro).
-- params: none
CREATE OR REPLACE TEMP MACRO relake_pct_code(c, guarded) AS
CASE
    WHEN (c BETWEEN 65 AND 90 OR c BETWEEN 97 AND 122 OR c BETWEEN 48 AND 57 OR c IN (45, 46, 95, 126))
        AND NOT (guarded AND (c BETWEEN 48 AND 57 OR c BETWEEN 65 AND 70 OR c BETWEEN 97 AND 102))
        THEN chr(c)
    ELSE '%' || upper(lpad(to_hex(c), 2, '0'))
END
