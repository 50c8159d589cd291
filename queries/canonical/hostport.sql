-- Returns: macro relake_hostport(hp, scheme): host and port part of an authority in canonical form.
--   The host is a bracketed IPv6 literal (from a leading '[' to the first ']') or runs up to the
--   first ':'; it goes through relake_host. The rest is the port part, through relake_port.
-- Reads: nothing (a macro).
-- params: none
CREATE OR REPLACE TEMP MACRO relake_hostport(hp, scheme) AS list_transform(
    [hp],
    lambda relake_hp: list_transform(
        [CASE
            WHEN starts_with(relake_hp, '[') AND contains(relake_hp, ']') THEN strpos(relake_hp, ']')
            WHEN contains(relake_hp, ':') THEN strpos(relake_hp, ':') - 1
            ELSE length(relake_hp)
        END],
        lambda relake_n: relake_host(left(relake_hp, relake_n))
            || relake_port(substr(relake_hp, relake_n + 1), scheme)
    )[1]
)[1]
