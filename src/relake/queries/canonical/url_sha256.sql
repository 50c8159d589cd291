-- Returns: macro url_sha256(u): lower-case hex sha256 of the UTF-8 bytes of canonical_url(u);
--   NULL when that is NULL.
-- Reads: nothing (a macro).
-- params: none
CREATE OR REPLACE TEMP MACRO url_sha256(u) AS sha256(canonical_url(u))
