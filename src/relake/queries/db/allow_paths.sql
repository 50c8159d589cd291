-- Returns: nothing; the single files this connection may still read once external access is off
--   (db.connect(readable_files=...): relake sql/head read a version's shards and deletion vector, not the folders
--   that hold them, which also hold removed.parquet or a user's other files).
-- Reads: nothing.
-- params: $files
SET allowed_paths = $files
