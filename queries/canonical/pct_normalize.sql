-- Returns: macro relake_pct_normalize(s): s with every valid percent-escape ('%' and two hex digits)
--   in canonical form (relake_pct_part); a '%' not followed by two hex digits is left as is. Splits
--   s on '%': part 1 is the text before the first '%', part i > 1 the text after the (i-1)-th '%';
--   each part is zipped with the part before it, which decides the idempotence guard. The lambda
--   body holds no regex: DuckDB rebuilds a lambda's expression state for every vector.
-- Reads: nothing (a macro).
-- params: none
CREATE OR REPLACE TEMP MACRO relake_pct_normalize(s) AS array_to_string(
    list_transform(
        list_zip(string_split(s, '%'), list_prepend(NULL, string_split(s, '%')), true),
        lambda relake_p, relake_i: CASE
            WHEN relake_i = 1 THEN relake_p[1]
            ELSE relake_pct_part(relake_p[1], relake_i > 2 AND relake_hex_prefix_len(relake_p[2]) = strlen(relake_p[2]) AND strlen(relake_p[2]) < 2)
        END
    ),
    ''
)
