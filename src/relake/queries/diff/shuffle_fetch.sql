-- Returns: one row, the number of rows written; writes to the parquet file $out the rows of view part (the
--   input files of one map task, of one side, projected as k, r, f) whose key is in view wanted: the rows
--   diff/keyed fetches back for the differing keys, found in its files by a fetch task of the distributed
--   keyed diff.
-- Reads: views part (k, r, f) and wanted (k).
-- params: $out
COPY (
    SELECT k, r, f FROM part WHERE k IN (SELECT k FROM wanted)
) TO $out (FORMAT parquet)
