-- Returns: the private audit copy: every removed row of every generation with URL, caption, key, shard,
--   position and every matching rule; sorted by generation, shard, position.
-- Reads: view removed_all (with column generation).
-- params: none
SELECT * FROM removed_all ORDER BY generation, shard, position
