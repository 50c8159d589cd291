-- Returns: what one publication reveals to someone holding the original, for the lake's private publication
--   log: one row per removed row with a URL (distinct): publication id $pub, the row's identity (url_sha256,
--   caption_sha256, key_sha256: the finest a manifest entry gets, and what the original's rows hash to), its
--   public category (the first of its sorted categories), its status ('explained' when any rule that matched
--   it is a non-sensitive `where` or domain rule, which the adversary recomputes from public columns;
--   otherwise 'sensitive' when a sensitive rule matched it, else 'benign') and the sensitive rules that
--   matched it (for the refusal's message; never published).
-- Reads: views removed_all (with column generation) and rule_kinds(generation, rule, sensitive, explains);
--   macros from canonical/.
-- params: $pub
WITH u AS (
    SELECT r.generation, r.shard, r.position, k.rule, k.sensitive, k.explains
    FROM (SELECT generation, shard, position, unnest(rules) AS rule FROM removed_all) AS r
    JOIN rule_kinds AS k ON k.generation = r.generation AND k.rule = r.rule
),
e AS (
    SELECT generation, shard, position, bool_or(explains) AS explained,
        list(DISTINCT rule ORDER BY rule) FILTER (WHERE sensitive) AS sensitive_rules
    FROM u
    GROUP BY ALL
),
x AS (
    SELECT r.url_sha256, caption_sha256(r.url_sha256, r.caption) AS ch, r.key, r.categories[1] AS category,
        CASE WHEN coalesce(e.explained, false) THEN 'explained' WHEN r.sensitive THEN 'sensitive'
            ELSE 'benign' END AS status,
        CASE WHEN r.sensitive THEN coalesce(e.sensitive_rules, []) ELSE [] END AS sensitive_rules
    FROM removed_all AS r
    LEFT JOIN e ON e.generation = r.generation AND e.shard = r.shard AND e.position = r.position
    WHERE r.url_sha256 IS NOT NULL
)
SELECT DISTINCT CAST($pub AS VARCHAR) AS pub, url_sha256, ch AS caption_sha256, key_sha256(ch, key) AS key_sha256,
    category, status, sensitive_rules
FROM x
ORDER BY url_sha256, caption_sha256, key_sha256, category, status
