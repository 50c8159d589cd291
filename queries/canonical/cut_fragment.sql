-- Returns: macro relake_cut_fragment(r): r (the path and query of a trimmed URL) without its
--   fragment: cut at the first '#', then trailing whitespace trimmed (none is left without a '#').
-- Reads: nothing (a macro).
-- params: none
CREATE OR REPLACE TEMP MACRO relake_cut_fragment(r) AS
CASE WHEN contains(r, '#') THEN rtrim(split_part(r, '#', 1), E' \t\n\x0b\x0c\r') ELSE r END
