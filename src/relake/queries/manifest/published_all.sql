-- Returns: nothing; creates view published: the logged publications' rows and the pending ones together.
-- Reads: view published_logged (the log's parquet files; an empty one when there are none), table pending_rows.
-- params: none
CREATE OR REPLACE TEMP VIEW published AS
SELECT pub, url_sha256, caption_sha256, key_sha256, category, status, sensitive_rules FROM published_logged
UNION ALL
SELECT pub, url_sha256, caption_sha256, key_sha256, category, status, sensitive_rules FROM pending_rows
