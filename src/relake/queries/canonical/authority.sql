-- Returns: macro relake_authority(a, scheme): the authority a (after '://', before the path) in
--   canonical form: the userinfo (up to and including the last '@') kept as is; the host (after
--   the userinfo: a bracketed IPv6 literal from '[' to the first ']', or up to the first ':')
--   through relake_host; the rest, the port part, through relake_port.
-- Reads: nothing (a macro).
-- params: none
CREATE OR REPLACE TEMP MACRO relake_authority(a, scheme) AS
regexp_extract(a, '^.*@', 0, 's')
|| relake_host(regexp_extract(a, '^(?:.*@)?(\[[^\]]*\]|[^:]*)', 1, 's'))
|| relake_port(regexp_extract(a, '^(?:.*@)?(?:\[[^\]]*\]|[^:]*)(.*)$', 1, 's'), scheme)
