-- Returns: nothing; inserts the base rows whose PDQ hash (from a side table or column, view img) is within the
--   match distance of an image-pdq entry: the pairs the build found with a multi-index Hamming search
--   (relake.hamming), already in view near.
-- Reads: view near(file, pos, entry).
-- params: $rule, $how
INSERT INTO matches
SELECT file, pos, $rule, $how, entry
FROM near
