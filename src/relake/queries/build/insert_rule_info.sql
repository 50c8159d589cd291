-- Returns: nothing; adds one rule.
-- Reads: nothing.
-- params: $rule, $category, $sensitive
INSERT INTO rule_info VALUES ($rule, $category, $sensitive)
