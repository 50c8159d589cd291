-- Returns: macro relake_pct_normalize_guarded(s): s with every valid percent-escape ('%' and two hex
--   digits) in canonical form, for strings that also hold a '%' not starting an escape (left as is).
--   Splits s on '%': part 1 is the text before the first '%', part i > 1 the text after the (i-1)-th
--   '%'; each part is zipped with the part before it. An escape is decoded when it encodes an
--   unreserved character (A-Z a-z 0-9 - . _ ~), except a hex digit guarded by the part before: a '%'
--   with no escape, followed by at most one hex digit (decoding could create a new escape there);
--   other escapes keep '%' and get upper-case digits. Rare, so a lambda is fine here (DuckDB
--   rebuilds a lambda's expression state for every vector, costly when run on every row).
-- Reads: nothing (a macro).
-- params: none
CREATE OR REPLACE TEMP MACRO relake_pct_normalize_guarded(s) AS array_to_string(
    list_transform(
        list_zip(string_split(s, '%'), list_prepend(NULL, string_split(s, '%')), true),
        lambda relake_p, relake_i: CASE
            WHEN relake_i = 1 THEN relake_p[1]
            WHEN NOT regexp_matches(relake_p[1], '^[0-9A-Fa-f]{2}') THEN '%' || relake_p[1]
            WHEN regexp_matches(relake_p[1], '^(?:2[dDeE]|3[0-9]|[46][1-9a-fA-F]|[57][0-9aA]|5[fF]|7[eE])')
                AND NOT (
                    relake_i > 2
                    AND regexp_full_match(relake_p[2], '[0-9A-Fa-f]?')
                    AND regexp_matches(relake_p[1], '^(?:3[0-9]|[46][1-6])')
                )
                THEN chr(CAST('0x' || left(relake_p[1], 2) AS INTEGER)) || substr(relake_p[1], 3)
            ELSE '%' || upper(left(relake_p[1], 2)) || substr(relake_p[1], 3)
        END
    ),
    ''
)
