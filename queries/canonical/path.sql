-- Returns: macro relake_path(r): the path and query (everything after the authority, fragment
--   already cut) in canonical form: '/' put in front when the path is empty, percent-escapes
--   normalised by relake_pct_normalize (only when there is a '%'), all else kept byte for byte.
-- Reads: nothing (a macro).
-- params: none
CREATE OR REPLACE TEMP MACRO relake_path(r) AS
CASE WHEN r = '' OR starts_with(r, '?') THEN '/' ELSE '' END
|| CASE WHEN contains(r, '%') THEN relake_pct_normalize(r) ELSE r END
