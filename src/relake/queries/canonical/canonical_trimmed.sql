-- Returns: macro relake_canonical_trimmed(t): canonical_url of an already trimmed URL t: NULL when t
--   is NULL or empty; t itself when it does not start with 'scheme://' (scheme = a letter, then
--   letters, digits, '+', '-', '.'); else the canonical 'scheme://authority' (relake_head) and the
--   canonical path and query (relake_path_query).
-- Reads: nothing (a macro).
-- params: none
CREATE OR REPLACE TEMP MACRO relake_canonical_trimmed(t) AS
CASE
    WHEN t IS NULL OR t = '' THEN NULL
    WHEN NOT regexp_matches(t, '^[A-Za-z][A-Za-z0-9+.\-]*://') THEN t
    ELSE relake_head(t) || relake_path_query(t)
END
