-- Returns: nothing; drops the narrowed diff's table of light rows (``diff.local.narrowed_tables``), made for one
--   side at a time.
-- Reads: TEMP TABLE relake_light.
-- params: none
DROP TABLE IF EXISTS relake_light
