-- Returns: nothing; table img_all: the image hashes, from the base data (current view img), of the matched
--   rows only (kept for manifest --image-hashes).
-- Reads: view img, table matches.
-- params: none
CREATE OR REPLACE TEMP TABLE img_all AS
SELECT i.file, i.pos, i.img
FROM img AS i
SEMI JOIN (SELECT DISTINCT file, pos FROM matches) AS m ON m.file = i.file AND m.pos = i.pos
WHERE i.img IS NOT NULL
