-- Returns: macro key_text(k): a row id as text that agrees across types: k cast to VARCHAR and trimmed; a
--   decimal integer ('12', '012', '+12', '-0012', the integer 12) loses its '+' and leading zeros ('12',
--   '-12'; '-0' is '0'); anything else is kept as trimmed; NULL when k is NULL.
-- Reads: nothing (a macro).
-- params: none
CREATE OR REPLACE TEMP MACRO key_text(k) AS (
    WITH t(s) AS (SELECT trim(CAST(k AS VARCHAR)))
    SELECT CASE
        WHEN s IS NULL THEN NULL
        WHEN NOT regexp_full_match(s, '[+-]?[0-9]+') THEN s
        WHEN coalesce(nullif(ltrim(ltrim(s, '+-'), '0'), ''), '0') = '0' THEN '0'
        ELSE (CASE WHEN starts_with(s, '-') THEN '-' ELSE '' END) || ltrim(ltrim(s, '+-'), '0')
    END
    FROM t
)
