-- Returns: macro relake_pct_normalize(s): s with every valid percent-escape ('%' and two hex digits)
--   put in canonical form by relake_pct_escape; a '%' not followed by two hex digits is left as is.
--   An escape right after such an invalid '%' (or an invalid '%' and one hex digit) is guarded, so
--   decoding never creates a new escape and the result is idempotent. Splits s on '%': part 1 is
--   the text before the first '%', part i > 1 the text after the (i-1)-th '%'; each part is zipped
--   with the part before it.
-- Reads: nothing (a macro).
-- params: none
CREATE OR REPLACE TEMP MACRO relake_pct_normalize(s) AS array_to_string(
    list_transform(
        list_zip(string_split(s, '%'), list_prepend(NULL, string_split(s, '%')), true),
        lambda relake_p, relake_i: CASE
            WHEN relake_i = 1 THEN relake_p[1]
            WHEN NOT regexp_matches(relake_p[1], '^[0-9A-Fa-f]{2}') THEN '%' || relake_p[1]
            ELSE relake_pct_escape(
                left(relake_p[1], 2),
                relake_i > 2 AND (relake_p[2] = '' OR regexp_full_match(relake_p[2], '[0-9A-Fa-f]'))
            ) || substr(relake_p[1], 3)
        END
    ),
    ''
)
