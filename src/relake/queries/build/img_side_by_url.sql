-- Returns: nothing; view img: each base row's image hash from a side table joined on the URL.
-- Reads: views rows(file, pos, url, caption, id) and side(k, img).
-- params: none
CREATE OR REPLACE VIEW img AS
SELECT r.file, r.pos, CAST(s.img AS VARCHAR) AS img
FROM rows AS r
JOIN side AS s ON r.url = CAST(s.k AS VARCHAR)
