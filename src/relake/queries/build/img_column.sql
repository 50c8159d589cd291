-- Returns: nothing; view img over the image-hash column already projected into view img_src(file, pos, img).
-- Reads: view img_src.
-- params: none
CREATE OR REPLACE VIEW img AS SELECT file, pos, CAST(img AS VARCHAR) AS img FROM img_src
