-- Returns: nothing; moves the matches found over the new version's shards into matches_after (audit input).
-- Reads: table matches.
-- params: none
CREATE OR REPLACE TEMP TABLE matches_after AS SELECT * FROM matches
