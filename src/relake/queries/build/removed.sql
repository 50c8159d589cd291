-- Returns: nothing; creates temp table removed: one row per matched base row with its shard and position,
--   every matching rule (sorted) and how each matched, the categories, whether any rule is sensitive, and
--   the image hash when it came from the base data (column or side table), never from a partner's list
--   alone. The row's own key, URL and caption are fetched after the writes (build/removed_full), reading
--   only the removed positions.
-- Reads: tables matches, shard_files(file, shard), rule_info(rule, category, sensitive), img_all.
-- params: none
CREATE OR REPLACE TEMP TABLE removed AS
WITH m AS (
    SELECT m.file, m.pos,
        list(m.rule ORDER BY m.rule, m.how) AS rules,
        list(m.how ORDER BY m.rule, m.how) AS hows,
        list(DISTINCT ri.category ORDER BY ri.category) AS categories,
        bool_or(ri.sensitive) AS sensitive
    FROM (SELECT DISTINCT file, pos, rule, how FROM matches) AS m
    JOIN rule_info AS ri ON ri.rule = m.rule
    GROUP BY m.file, m.pos
)
SELECT sf.shard, m.pos AS position, m.rules, m.hows, m.categories, m.sensitive, ia.img AS image_hash
FROM m
JOIN shard_files AS sf ON sf.file = m.file
LEFT JOIN img_all AS ia ON ia.file = m.file AND ia.pos = m.pos
ORDER BY sf.shard, m.pos
