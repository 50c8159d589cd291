-- Returns: removed rows per rule id (a row matched by several rules counts for each).
-- Reads: table removed.
-- params: none
SELECT r AS rule, count(*) AS rows
FROM (SELECT unnest(rules) AS r FROM removed)
GROUP BY r
ORDER BY r
