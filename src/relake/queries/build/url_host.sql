-- Returns: nothing; creates macro url_host(u): the host part of a URL (after the scheme and any userinfo,
--   before port, path, query or fragment; IPv6 literals keep their brackets); '' when there is none.
-- Reads: nothing (a macro).
-- params: none
CREATE OR REPLACE TEMP MACRO url_host(u) AS
regexp_extract(u, '^[A-Za-z][A-Za-z0-9+.-]*://(?:[^@/?#]*@)?(\[[^\]]*\]|[^:/?#]*)', 1)
