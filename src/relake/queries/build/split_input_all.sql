-- Returns: nothing; view split_input (what audit/base_split scans): every base row, from view base_flagged.
-- Reads: view base_flagged.
-- params: none
CREATE OR REPLACE VIEW split_input AS SELECT * FROM base_flagged
