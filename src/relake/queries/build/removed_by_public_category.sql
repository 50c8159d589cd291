-- Returns: removed rows per public category, each row once, under the first of its sorted categories (the one
--   the public removal manifest lists it under).
-- Reads: table removed.
-- params: none
SELECT categories[1] AS category, count(*) AS rows
FROM removed
GROUP BY categories[1]
ORDER BY categories[1]
