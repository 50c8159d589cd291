-- Returns: one row per affected copy row, by file then position: file, pos, key, status, error, and
--   by_url, by_image, not_kept (true when any check matched the row that way).
-- Reads: temp table hits.
-- params: none
SELECT file, pos, any_value(key), any_value(status), any_value(error),
    bool_or(by_url), bool_or(by_image), bool_or(not_kept)
FROM hits
GROUP BY file, pos
ORDER BY file, pos
