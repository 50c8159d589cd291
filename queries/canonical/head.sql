-- Returns: macro relake_head(h, k): h is 'scheme://authority' with '://' at position k; returns it
--   in canonical form. An ASCII head with no '@' and no ':' after '://' is just lower-cased;
--   otherwise the scheme is lower-cased and the authority goes to relake_authority.
-- Reads: nothing (a macro).
-- params: none
CREATE OR REPLACE TEMP MACRO relake_head(h, k) AS
CASE
    WHEN strlen(h) = length(h) AND NOT contains(h, '@') AND NOT contains(substr(h, k + 3), ':')
        THEN lower(h)
    ELSE lower(left(h, k - 1)) || '://' || relake_authority(substr(h, k + 3), lower(left(h, k - 1)))
END
