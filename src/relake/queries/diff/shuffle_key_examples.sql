-- Returns: nothing; writes to the parquet file $out the at most 5 most repeated duplicated keys of each side
--   in this key bucket (side, k, n), ordered as diff/key_check orders its examples (n descending, then k).
--   The driver's top 5 of a side over every bucket is among these (diff/shuffle_examples).
-- Reads: TEMP TABLE kg (from diff/shuffle_key_groups; k already cast to the type of the driver's key).
-- params: $out
COPY (
    SELECT side, k, n
    FROM (
        SELECT side, k, n, row_number() OVER (PARTITION BY side ORDER BY n DESC, k) AS i
        FROM (
            SELECT 'a' AS side, ka AS k, na AS n FROM kg WHERE na > 1
            UNION ALL
            SELECT 'b' AS side, kb AS k, nb AS n FROM kg WHERE nb > 1
        )
        WHERE k IS NOT NULL
    )
    WHERE i <= 5
) TO $out (FORMAT parquet)
