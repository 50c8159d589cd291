-- Returns: nothing; creates the table of rule ids with their category and sensitivity.
-- Reads: nothing.
-- params: none
CREATE OR REPLACE TEMP TABLE rule_info (rule VARCHAR, category VARCHAR, sensitive BOOLEAN)
