-- Returns: macro canonical_url(u): the canonical form of URL u (VARCHAR), the text that URL hashes
--   are taken of; NULL for NULL or blank input. The rule is relake.canonical.CANONICAL_RULE
--   (version relake.canonical.CANONICAL_VERSION); relake.canonical.canonical_url is its Python mirror.
--   Fast path: a URL that is already canonical (lower-case scheme; lower-case ASCII host of letters,
--   digits, '_', '.', '-'; no userinfo or port; a non-empty path; no '#'; only upper-case escapes of
--   reserved or non-ASCII bytes; no whitespace at the end) is returned as is after one full match.
--   Everything else goes to relake_canonical_trimmed after trimming ASCII whitespace (space, tab,
--   LF, VT, FF, CR), paying for trim() only when the first or last character is <= ' '.
--   list_transform([x], lambda v: ...)[1] binds x once: DuckDB does not share subexpressions
--   across CASE branches, so a macro parameter used several times would be evaluated each time.
-- Reads: nothing (a macro); needs the other queries/canonical macros and the relake_idna UDF,
--   all registered by relake.canonical.register_canonical.
-- params: none
CREATE OR REPLACE TEMP MACRO canonical_url(u) AS list_transform(
    [u],
    lambda relake_u: CASE
        WHEN regexp_full_match(
            relake_u,
            '[a-z][a-z0-9+.\-]*://[a-z0-9_.\-]+/(?:(?:[^#%]|%(?:[01][0-9A-F]|2[0-9A-CF]|3[A-F]|40|5[B-E]|60|7[B-DF]|[89A-F][0-9A-F]))*(?:[^#%\t\n\x0b\x0c\r ]|%(?:[01][0-9A-F]|2[0-9A-CF]|3[A-F]|40|5[B-E]|60|7[B-DF]|[89A-F][0-9A-F])))?'
        ) THEN relake_u
        ELSE relake_canonical_trimmed(
            CASE
                WHEN ord(relake_u) <= 32 OR ord(right(relake_u, 1)) <= 32
                    THEN trim(relake_u, E' \t\n\x0b\x0c\r')
                ELSE relake_u
            END
        )
    END
)[1]
