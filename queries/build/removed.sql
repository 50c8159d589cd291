-- Returns: nothing; creates temp table removed: one row per matched base row with its shard and position,
--   every matching rule (sorted) and how each matched, the categories, whether any rule is sensitive,
--   the key, the canonical URL sha256, URL and caption (private), and the image hash when it came from
--   the base data (column or side table), never from a partner's list alone.
-- Reads: tables matches, shard_files(file, shard), rule_info(rule, category, sensitive), views rows, img_all.
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
SELECT
    sf.shard, m.pos AS position, r.id AS key, url_sha256(r.url) AS url_sha256, r.url, r.caption,
    m.rules, m.hows, m.categories, m.sensitive, ia.img AS image_hash
FROM m
JOIN shard_files AS sf ON sf.file = m.file
JOIN rows AS r ON r.file = m.file AND r.pos = m.pos
LEFT JOIN img_all AS ia ON ia.file = m.file AND ia.pos = m.pos
ORDER BY sf.shard, m.pos
