-- Returns: nothing; creates TEMP TABLE dg with one row per hash bucket g holding rows: na and nb (rows of
--   A and B in it) and m (the sum over A's rows of hash(h) as HUGEINT minus the same over B's: exact, no
--   overflow). Each row's 64-bit hash() h falls in bucket g = h & $mask; one hash aggregate over both sides
--   with only $mask + 1 groups (no spill, no per-row state). Equal rows hash equal, so a bucket whose rows
--   form the same multiset on both sides has na = nb and m = 0; diff/keyless then groups the whole rows of
--   the other buckets only, exactly. A difference is missed only when, inside one bucket, the differing
--   rows' copy counts and m sums both cancel out (different rows whose hashes collide, or m sums equal by
--   chance: about 2^-64 per differing bucket for data not crafted against DuckDB's hash).
-- Reads: views a (r, f) and b (r).
-- params: $mask
CREATE OR REPLACE TEMP TABLE dg AS
SELECT g, count(*) FILTER (WHERE s = 1) AS na, count(*) FILTER (WHERE s = -1) AS nb, sum(m) AS m
FROM (
    SELECT h & $mask AS g, CAST(hash(h) AS HUGEINT) * s AS m, s
    FROM (
        SELECT hash(r) AS h, 1 AS s FROM a
        UNION ALL
        SELECT hash(r) AS h, -1 AS s FROM b
    )
)
GROUP BY g
