-- Returns: macro relake_authority(a, scheme): the authority a (after '://', before the path) in
--   canonical form: the userinfo (up to and including the last '@') kept as is, then the host and
--   port part through relake_hostport.
-- Reads: nothing (a macro).
-- params: none
CREATE OR REPLACE TEMP MACRO relake_authority(a, scheme) AS list_transform(
    [a],
    lambda relake_a: list_transform(
        [regexp_extract(relake_a, '^.*@', 0, 's')],
        lambda relake_ui: relake_ui || relake_hostport(substr(relake_a, length(relake_ui) + 1), scheme)
    )[1]
)[1]
