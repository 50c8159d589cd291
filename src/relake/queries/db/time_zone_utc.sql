-- Returns: nothing; pins the session time zone to UTC, so TIMESTAMPTZ functions in rules (year, strftime, + ...)
--   give the same answer on every machine (the sandbox rules run in; see predicate.py).
-- Reads: nothing.
-- params: none
SET TimeZone = 'UTC'
