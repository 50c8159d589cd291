-- Audit (must return zero rows): base rows a rule matched that are missing from table removed (so they
--   would survive into the new version). With audit/shard_counts and audit/subset (the written rows are
--   exactly the base rows minus the removed ones) this proves that no written row matches a rule, for
--   rules that are functions of the row: re-running them over the output (--full-audit) checks it again.
-- Reads: tables matches, removed, shard_files.
-- params: none
SELECT m.file, m.pos, m.rule
FROM matches AS m
LEFT JOIN (SELECT sf.file, r.position FROM removed AS r JOIN shard_files AS sf USING (shard)) AS x
    ON x.file = m.file AND x.position = m.pos
WHERE x.position IS NULL
LIMIT 10
