-- Returns: macro relake_path(r): the path and query (everything after the authority, fragment
--   already cut) in canonical form: '/' put in front when the path is empty, percent-escapes
--   normalised by relake_pct_normalize, all else kept byte for byte. relake_pct_normalize only runs
--   when some escape would change (has a lower-case hex digit or encodes an unreserved character);
--   otherwise it would return its input.
-- Reads: nothing (a macro).
-- params: none
CREATE OR REPLACE TEMP MACRO relake_path(r) AS list_transform(
    [r],
    lambda relake_r: CASE WHEN relake_r = '' OR starts_with(relake_r, '?') THEN '/' ELSE '' END
        || CASE
            WHEN contains(relake_r, '%')
                AND regexp_matches(
                    relake_r,
                    '%(?:[0-9A-Fa-f][a-f]|[a-f][0-9A-F]|2[DE]|3[0-9]|[46][1-9A-F]|[57][0-9A]|5F|7E)'
                )
                THEN relake_pct_normalize(relake_r)
            ELSE relake_r
        END
)[1]
