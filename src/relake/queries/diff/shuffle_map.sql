-- Returns: nothing; writes view part (k, r, f, fi: the input files of one map task, of one side of a keyed
--   diff, projected as diff/keyed_keys reads views a and b) to the folder $out as parquet partitioned by key bucket
--   (subfolders bucket=N, N = hash(k) & $mask, only for buckets holding rows), each row as k, h (the 64-bit
--   hash() of r, exactly as diff/keyed_keys computes it), f, fi (the row's file index in its side, which routes
--   the fetch of its row) and side ($side: 'a' or 'b'). Run on a
--   single-threaded connection (a map task of the distributed keyed diff).
-- Reads: view part (k, r, f, fi).
-- params: $side, $mask, $out
COPY (
    SELECT k, hash(r) AS h, f, fi, CAST($side AS VARCHAR) AS side, hash(k) & $mask AS bucket
    FROM part
) TO $out (FORMAT parquet, PARTITION_BY (bucket))
