-- Returns: nothing; writes to the folder $path the keys of TEMP TABLE dk whose rows side $side ('a' or 'b')
--   must fetch (every differing key but those of change $skip: 'added' for A, which lacks them, 'removed'
--   for B), as parquet partitioned by g, the map job holding the key's row: g = $groups[file index + 1],
--   with the file index fa (A) or fb (B) from the shuffle. The fetch task of job g reads only g=<g>/.
-- Reads: TEMP TABLE dk (from diff/keyed_keys_load: with fa and fb).
-- params: $side, $skip, $groups, $path
COPY (
    SELECT k, list_extract($groups, CAST(CASE WHEN $side = 'a' THEN fa ELSE fb END AS BIGINT) + 1) AS g
    FROM dk
    WHERE change <> $skip
) TO $path (FORMAT parquet, PARTITION_BY (g))
