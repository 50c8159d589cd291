-- Returns: the sums of temp table base_split (audit/base_split): file, removed, bucket, rows, h, sum_lo, sum_hi.
-- Reads: temp table base_split.
-- params: none
SELECT file, removed, bucket, rows, h, sum_lo, sum_hi FROM base_split
