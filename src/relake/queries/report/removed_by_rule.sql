-- Returns: removed rows per generation and rule (a row two rules matched counts once for each), most first:
--   generation, rule, rows. For the private report only (a rule id can single out sensitive removals).
-- Reads: view removed_all (lineage.bind_removed).
-- params: none
SELECT generation, rule, count(*) AS rows
FROM (SELECT generation, unnest(list_distinct(rules)) AS rule FROM removed_all)
GROUP BY ALL
ORDER BY rows DESC, generation, rule
