-- Returns: nothing; creates the temp table every rule's matches are inserted into.
-- Reads: nothing.
-- params: none
CREATE OR REPLACE TEMP TABLE matches (file VARCHAR, pos BIGINT, rule VARCHAR, how VARCHAR)
