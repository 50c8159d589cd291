-- Returns: macro canonical_url(u): the canonical form of URL u (VARCHAR), the text that URL hashes
--   are taken of; NULL for NULL or blank input. The rule is relake.canonical.CANONICAL_RULE
--   (version relake.canonical.CANONICAL_VERSION); relake.canonical.canonical_url is its Python mirror.
--   Fast path: a URL that is already canonical (lower-case scheme; a host of lower-case ASCII
--   letters, digits, '_', '.', '-'; no userinfo or port; a non-empty path of printable ASCII
--   (0x21-0x7E) without '#', '%' only in upper-case escapes of a reserved character ': / ? # [ ] @
--   ! $ & ' ( ) * + , ; =', of '%' or of a byte <= 0x20 or >= 0x7F) is returned as is after one full
--   match. Other URLs are trimmed of ASCII whitespace (space, tab, LF, VT, FF, CR; trim() only runs
--   when the first character is <= ' ' or the last is whitespace) and go to relake_canonical_trimmed.
--   Pass a column or a cheap expression: u is named many times (only a few are evaluated per row),
--   so canonical_url(canonical_url(x)) inlines the inner call dozens of times; use a CTE instead.
--   Performance note: the macros use no lambdas. DuckDB builds a lambda's expression state anew
--   for every vector, so a lambda used as a let-binding costs microseconds per vector even for one row.
-- Reads: nothing (a macro); needs the other queries/canonical macros and the relake_idna UDF,
--   all registered by relake.canonical.register_canonical.
-- params: none
CREATE OR REPLACE TEMP MACRO canonical_url(u) AS
CASE
    WHEN regexp_full_match(
        u,
        '[a-z][a-z0-9+.\-]*://[a-z0-9_.\-]+/(?:[\x21\x22\x24\x26-\x7E]|%(?:[01][0-9A-F]|2[013-9A-CF]|3[ABDF]|40|5[BD]|7F|[89A-F][0-9A-F]))*'
    ) THEN u
    WHEN ord(u) <= 32 OR ends_with(u, ' ') OR ends_with(u, E'\t') OR ends_with(u, E'\n')
        OR ends_with(u, E'\r') OR ends_with(u, E'\x0b') OR ends_with(u, E'\x0c')
        THEN relake_canonical_trimmed(trim(u, E' \t\n\x0b\x0c\r'))
    ELSE relake_canonical_trimmed(u)
END
