-- Returns: nothing; writes a LAION-style "-md5" side table: SAMPLE_ID and a stand-in image md5 per row.
-- Reads: view src (a LAION-like original).
-- params: $out
COPY (SELECT SAMPLE_ID, md5('image-bytes-' || CAST(SAMPLE_ID AS VARCHAR)) AS md5 FROM src ORDER BY SAMPLE_ID)
TO $out (FORMAT parquet, COMPRESSION zstd)
