-- Returns: macro relake_pct_normalize(s): s with every valid percent-escape ('%' + two hex digits)
--   put in canonical form by relake_pct_escape; a '%' not followed by two hex digits is left as is.
--   An escape right after such an invalid '%' (or after an invalid '%' and one hex digit) is guarded,
--   so decoding never creates a new escape and the result is idempotent.
--   Splits on '%': part 1 is the text before the first '%', part i > 1 follows the (i-1)-th '%'.
-- Reads: nothing (a macro).
-- params: none
CREATE OR REPLACE TEMP MACRO relake_pct_normalize(s) AS array_to_string(
    list_transform(
        list_zip(string_split(s, '%'), list_prepend(NULL, string_split(s, '%')), true),
        lambda x, i: CASE
            WHEN i = 1 THEN x[1]
            WHEN NOT regexp_matches(x[1], '^[0-9A-Fa-f]{2}') THEN '%' || x[1]
            ELSE relake_pct_escape(
                x[1][1:2],
                i > 2 AND (x[2] = '' OR regexp_full_match(x[2], '[0-9A-Fa-f]'))
            ) || x[1][3:]
        END
    ),
    ''
)
