-- Returns: nothing; creates (empty) the temp table hits: one row per copy row a check matched, saying how,
--   with the row's key, status and error message carried along (so the copy is scanned once per mode);
--   loose_url / loose_caption: matched only by URL alone (the copy has no caption column) / by URL and
--   caption alone (no id column) where the manifest's entry is finer.
-- Reads: nothing.
-- params: none
CREATE OR REPLACE TEMP TABLE hits (
    file VARCHAR,
    pos BIGINT,
    key VARCHAR,
    status VARCHAR,
    error VARCHAR,
    by_url BOOLEAN,
    by_image BOOLEAN,
    not_kept BOOLEAN,
    loose_url BOOLEAN,
    loose_caption BOOLEAN
)
