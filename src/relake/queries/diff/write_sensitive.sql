-- Returns: nothing; writes the withheld values (raw URL, or key) of view sensitive_removed to the parquet
--   file $path, for the map tasks of the distributed keyed diff to withhold the same rows as this process.
-- Reads: view sensitive_removed (relake_sensitive).
-- params: $path
COPY (SELECT relake_sensitive FROM sensitive_removed) TO $path (FORMAT parquet)
