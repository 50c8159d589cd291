-- Returns: nothing; adds one cache file -> base file mapping.
-- Reads: nothing.
-- params: $cache_file, $file
INSERT INTO cache_files VALUES ($cache_file, $file)
