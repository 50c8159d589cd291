-- Returns: macro relake_authority(a, scheme): the authority (after '://', before the path) split
--   into userinfo (up to the last '@'), host (a bracketed IPv6 literal '[...]', or up to the first
--   ':') and port part (the rest), joined again in canonical form by relake_authority_parts.
-- Reads: nothing (a macro).
-- params: none
CREATE OR REPLACE TEMP MACRO relake_authority(a, scheme) AS relake_authority_parts(
    regexp_extract(a, '^(.*@)?(\[[^\]]*\]|[^:]*)(.*)$', ['userinfo', 'host', 'port'], 's'),
    scheme
)
