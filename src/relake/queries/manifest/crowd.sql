-- Returns: the sets of sensitive removals that the publications logged in the lake (the new ones, $new,
--   included) let someone holding the original single out: per public category and per "atom" (the removed
--   rows published by exactly the same publications: any difference, intersection or union of publications
--   is a union of atoms), the distinct URL hashes of its 'sensitive' rows and of its 'benign' rows whose URL
--   no sensitive row has; 'explained' rows (a public rule recomputes them) never count. A row's status is the
--   most revealing over the publications holding it (explained, then sensitive, then benign). Only atoms that
--   a new publication creates or splits are returned (earlier ones were checked when they were written), and
--   only those with sensitive rows and fewer than $k benign ones: pubs (the publications holding the atom,
--   sorted), category, sensitive and benign hash counts, and the sensitive rules involved.
-- Reads: view published(pub, url_sha256, caption_sha256, key_sha256, category, status, sensitive_rules).
-- params: $new, $k
WITH r AS (
    SELECT url_sha256, caption_sha256, key_sha256, min(category) AS category,
        list(DISTINCT pub ORDER BY pub) AS pubs,
        coalesce(list(DISTINCT pub ORDER BY pub) FILTER (WHERE NOT list_contains($new, pub)), []) AS old_pubs,
        bool_or(list_contains($new, pub)) AS in_new,
        CASE WHEN bool_or(status = 'explained') THEN 'explained' WHEN bool_or(status = 'sensitive')
            THEN 'sensitive' ELSE 'benign' END AS status,
        list_distinct(flatten(list(sensitive_rules))) AS sensitive_rules
    FROM published
    GROUP BY url_sha256, caption_sha256, key_sha256
),
su AS (SELECT DISTINCT url_sha256 FROM r WHERE status = 'sensitive'),
atoms AS (
    SELECT r.pubs, r.old_pubs, r.category, bool_or(r.in_new) AS in_new,
        count(DISTINCT r.url_sha256) FILTER (WHERE r.status = 'sensitive') AS sensitive,
        count(DISTINCT r.url_sha256) FILTER (WHERE r.status = 'benign' AND su.url_sha256 IS NULL) AS benign,
        list_sort(list_distinct(flatten(list(r.sensitive_rules)))) AS rules
    FROM r
    LEFT JOIN su ON su.url_sha256 = r.url_sha256
    GROUP BY r.pubs, r.old_pubs, r.category
),
touched AS (SELECT old_pubs, category FROM atoms GROUP BY ALL HAVING bool_or(in_new))
SELECT a.pubs, a.category, a.sensitive, a.benign, a.rules
FROM atoms AS a
SEMI JOIN touched AS t ON t.old_pubs = a.old_pubs AND t.category = a.category
WHERE a.sensitive > 0 AND a.benign < $k
ORDER BY a.benign, a.category, a.pubs
