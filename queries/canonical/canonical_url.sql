-- Returns: macro canonical_url(u): the canonical form of URL u (VARCHAR), the text that URL hashes
--   are taken of; NULL for NULL or blank input. The rule is relake.canonical.CANONICAL_RULE
--   (version relake.canonical.CANONICAL_VERSION); relake.canonical.canonical_url is its Python mirror.
--   Trims ASCII whitespace (space, tab, LF, VT, FF, CR), paying for trim() only when the first or
--   last character is a control character or a space. list_transform([x], lambda v: ...)[1] binds
--   x once: DuckDB does not share subexpressions across CASE branches, so a macro parameter used
--   several times would be evaluated several times.
-- Reads: nothing (a macro); needs the other queries/canonical macros and the relake_idna UDF,
--   all registered by relake.canonical.register_canonical.
-- params: none
CREATE OR REPLACE TEMP MACRO canonical_url(u) AS list_transform(
    [CASE WHEN ord(u) <= 32 OR ord(right(u, 1)) <= 32 THEN trim(u, E' \t\n\x0b\x0c\r') ELSE u END],
    lambda relake_t: relake_canonical_trimmed(relake_t)
)[1]
