-- Returns: one row per side with duplicated keys: side and examples (up to 5 keys as JSON text, the most
--   repeated first, then by key), as diff/key_check lists them, from every key bucket's candidates.
-- Reads: view key_examples (side, k, n; k cast to the type of view a's key), written by the reduce tasks
--   (diff/shuffle_key_examples).
-- params: none
SELECT side, list(j ORDER BY i) AS examples
FROM (
    SELECT side, CAST(to_json(k) AS VARCHAR) AS j, row_number() OVER (PARTITION BY side ORDER BY n DESC, k) AS i
    FROM key_examples
)
WHERE i <= 5
GROUP BY side
ORDER BY side
