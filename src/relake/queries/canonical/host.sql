-- Returns: macro relake_host(h): the host lower-cased; a host with any non-ASCII character goes
--   through the Python UDF relake_idna instead (UTS #46 / IDNA2008 punycode, lower-cased on failure).
-- Reads: nothing (a macro); needs relake_idna, registered by relake.canonical.register_canonical.
-- params: none
CREATE OR REPLACE TEMP MACRO relake_host(h) AS
CASE WHEN strlen(h) <> length(h) THEN relake_idna(h) ELSE lower(h) END
