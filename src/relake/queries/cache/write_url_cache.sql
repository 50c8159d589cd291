-- Returns: nothing; writes the URL cache of one shard to $out (zstd parquet): one row per row of the shard, in
--   the shard's order, with h32 (the first 32 bits of the sha256 of the row's canonical URL, as UINTEGER; NULL
--   when the URL has no canonical form) and host (url_host of the canonical URL, '' when it has none; a
--   dictionary-encoded column). A prefix of the hash is enough: it only picks candidates, which a URL rule
--   confirms on the row's own URL; the host is exact.
-- Reads: view shard_urls(url) (the shard's URL column as VARCHAR, in file order); macros canonical_url, url_host.
-- params: $out
COPY (
    SELECT CAST('0x' || sha256(c)[1:8] AS UINTEGER) AS h32, url_host(c) AS host
    FROM (SELECT canonical_url(url) AS c FROM shard_urls)
) TO $out (FORMAT parquet, COMPRESSION zstd)
