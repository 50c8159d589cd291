-- Returns: nothing; turns external access off: no file outside allowed_directories, no network, no extension
--   install or load (the sandbox rules run in; see predicate.py).
-- Reads: nothing.
-- params: none
SET enable_external_access = false
