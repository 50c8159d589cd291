-- Returns: nothing; writes the private provenance table of the new version.
-- Reads: table removed.
-- params: $out
COPY (SELECT * FROM removed ORDER BY shard, position) TO $out (FORMAT parquet, COMPRESSION zstd)
