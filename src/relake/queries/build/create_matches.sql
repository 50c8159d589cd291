-- Returns: nothing; creates the temp table every rule's matches are inserted into: the base row (file, pos),
--   the rule, how it matched, and the blocklist entry that matched it (NULL for a `where` rule), so a build
--   can say how many entries of a list matched nothing.
-- Reads: nothing.
-- params: none
CREATE OR REPLACE TEMP TABLE matches (file VARCHAR, pos BIGINT, rule VARCHAR, how VARCHAR, entry VARCHAR)
