-- Returns: nothing; an empty view img when the base carries no image hashes of its own.
-- Reads: nothing.
-- params: none
CREATE OR REPLACE VIEW img AS
SELECT CAST(NULL AS VARCHAR) AS file, CAST(NULL AS BIGINT) AS pos, CAST(NULL AS VARCHAR) AS img
WHERE false
