-- Returns: macro relake_authority_parts(p, scheme): p is the struct (userinfo, host, port) split
--   from an authority by relake_authority; returns the userinfo as is, the host through relake_host,
--   and the port part unless it is empty, ':' alone or the scheme's default (http :80, https :443).
-- Reads: nothing (a macro).
-- params: none
CREATE OR REPLACE TEMP MACRO relake_authority_parts(p, scheme) AS
p.userinfo || relake_host(p.host) || CASE
    WHEN p.port IN ('', ':') OR (p.port = ':80' AND scheme = 'http') OR (p.port = ':443' AND scheme = 'https')
        THEN ''
    ELSE p.port
END
