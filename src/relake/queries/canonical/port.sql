-- Returns: macro relake_port(p, scheme): the port part p of an authority (what follows the host:
--   '' or ':' and the port) in canonical form: '' when it is empty, ':' alone, or the scheme's
--   default (http ':80', https ':443', compared as text); otherwise p as is.
-- Reads: nothing (a macro).
-- params: none
CREATE OR REPLACE TEMP MACRO relake_port(p, scheme) AS
CASE
    WHEN p IN ('', ':') OR (p = ':80' AND scheme = 'http') OR (p = ':443' AND scheme = 'https') THEN ''
    ELSE p
END
