-- Returns: nothing; writes the rows a demo user downloaded with img2dataset: about 2% of the original plus
--   every row that the research build removed (so the copy has something to clean), in SAMPLE_ID order
--   (the semi-join does not keep the scan's order, and the copy's seeded shuffle starts from this order).
-- Reads: view src (the original) and the removed.parquet file $removed.
-- params: $removed, $out
COPY (
    SELECT s.*
    FROM src AS s
    WHERE s.hash % 50 = 0
       OR CAST(s.SAMPLE_ID AS VARCHAR) IN (SELECT key FROM read_parquet($removed, hive_partitioning = false))
    ORDER BY s.SAMPLE_ID
) TO $out (FORMAT parquet, COMPRESSION zstd)
