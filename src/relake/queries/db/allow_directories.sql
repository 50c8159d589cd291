-- Returns: nothing; the folders (prefixes) this connection may still read and write once external access is
--   off (db.connect(readable=...): the lake, the base's and side tables' folders, relake's own temp folders).
-- Reads: nothing.
-- params: $dirs
SET allowed_directories = $dirs
