-- Returns: how many removed rows had no URL (and so no hash in the public manifest).
-- Reads: view removed_all.
-- params: none
SELECT count(*) FROM removed_all WHERE url_sha256 IS NULL
