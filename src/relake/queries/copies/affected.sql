-- Returns: one row per affected copy row, by file then position: file, pos, key, status, error, and
--   by_url, by_image, not_kept (true when any check matched the row that way), and loose: 'url' when the
--   row was matched only by URL alone, 'caption' only by URL and caption alone (see copies/match_manifest),
--   NULL when it was matched exactly or by another check.
-- Reads: temp table hits.
-- params: none
SELECT file, pos, any_value(key), any_value(status), any_value(error),
    bool_or(by_url), bool_or(by_image), bool_or(not_kept),
    CASE
        WHEN bool_or(by_image) OR bool_or(not_kept) THEN NULL
        WHEN bool_and(loose_url) THEN 'url'
        WHEN bool_and(loose_caption) THEN 'caption'
    END
FROM hits
GROUP BY file, pos
ORDER BY file, pos
