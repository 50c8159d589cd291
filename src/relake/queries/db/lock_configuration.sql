-- Returns: nothing; locks the connection's configuration: no SET after this (the sandbox stays shut).
-- Reads: nothing.
-- params: none
SET lock_configuration = true
