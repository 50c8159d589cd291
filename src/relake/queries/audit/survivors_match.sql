-- Audit (must return zero rows): rows of the new version that still match a rule, found by re-running
--   every rule over the written shards into table matches_after.
-- Reads: table matches_after.
-- params: none
SELECT file, pos, rule, how FROM matches_after LIMIT 10
