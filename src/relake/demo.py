"""``relake demo``: the whole job on a synthetic LAION-like dataset, narrated on stderr."""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from relake import console
from relake.blocklist import add_blocklist
from relake.build import build_version, planned_shards
from relake.canonical import register_canonical, url_sha256
from relake.copies import check_copy, clean_copy
from relake.db import connect
from relake.diff import diff_versions
from relake.errors import RelakeError
from relake.ingest import ingest_version
from relake.kinds import HASH_ALGORITHMS, KindName
from relake.lake import Lake
from relake.publish import check_sums, load_manifest, lookup_urls, publish_release
from relake.report import Report, json_meta, plural, rounded
from relake.sources import resolve_sources
from relake.spec import load_spec
from relake.sql import query
from relake.synth import synth_original
from relake.synthcopy import synth_copy
from relake.verify import verify_target

ORIGINAL = "laion-demo"


@dataclass(frozen=True)
class DemoReport(Report):
    """What ``relake demo`` made: the lake's versions, the release, the user's copy and its cleaned copy, and the
    commands to try next."""

    lake: Path
    versions: list[str]
    release: Path
    copy: Path
    cleaned: Path
    affected: int  # rows of the user's copy the release's manifest names
    affected_after_clean: int
    seconds: float = field(metadata=json_meta(convert=rounded))
    try_next: list[str] = field(default_factory=list)


def run_demo(lake: Lake, *, rows: int = 1_000_000, work: Path | None = None) -> DemoReport:
    if lake.versions_dir.is_dir() and lake.version_names():
        raise RelakeError(
            f"the lake {lake.root} already holds versions ({', '.join(lake.version_names()[:5])}); the demo "
            "starts from an empty lake: use `relake --lake /tmp/relake-demo demo` or empty this one"
        )
    t0 = time.perf_counter()
    src = work or (lake.root / "demo" / "original")
    console.step(f"synthesising a LAION-like original: {plural(rows, 'row')} in 8 shards → {src}")
    with console.progress("synth", rows) as advance:
        last = [0]

        def tick(n: int) -> None:
            advance(n - last[0])
            last[0] = n

        t = time.perf_counter()
        synth_original(src, rows, 8, seed=2023, progress=tick)
    console.info(f"  {rows / (time.perf_counter() - t):,.0f} rows/s")

    console.step(f"ingesting it as version {ORIGINAL!r} (shards referenced in place, sha256 + fingerprint recorded)")
    t = time.perf_counter()
    v = ingest_version(lake, ORIGINAL, [str(src)])
    console.info(f"  {plural(v.rows, 'row')}, {v.bytes / 1e6:.1f} MB in {time.perf_counter() - t:.2f} s; "
                 f"fingerprint {v.fingerprint.value[:16]}…")
    console.kv(f"version {v.name}", [
        ("rows", f"{v.rows:,}"), ("shards", len(v.shards)), ("bytes", f"{v.bytes:,}"),
        ("roles", v.roles.text),
        ("fingerprint", v.fingerprint.value),
    ], stderr=True)  # the narration is on stderr: stdout holds the result (--json: only the report)

    console.step("planting blocklists of every kind (url, canonical-only url, url-sha256, domain, key, image md5)")
    inputs = lake.root / "demo" / "inputs"
    plant_blocklists(lake, src, inputs)
    for name, kind, extra in DEMO_BLOCKLISTS:
        b = add_blocklist(lake, name, inputs / f"{name}.txt", kind, hash_of=extra)
        console.info(f"  {name} ({kind}): {plural(b.unique_entries, 'entry')}, sha256 {b.sha256[:12]}…")

    for spec_name, text in (("research", RESEARCH_SPEC), ("research-safe", SAFE_SPEC)):
        spec_path = inputs / f"{spec_name}.toml"
        spec_path.write_text(text.replace("@SIDE@", str(inputs / "laion-md5.parquet")), encoding="utf-8")
        console.step(f"building {spec_name!r} from {load_spec(spec_path).base!r} with {spec_path.name}")
        t = time.perf_counter()
        with console.progress("build", planned_shards(lake, load_spec(spec_path))) as advance:
            result = build_version(lake, load_spec(spec_path), progress=advance)
        secs = time.perf_counter() - t
        console.info(f"  kept {plural(result.version.rows, 'row')}, removed {result.removed:,} in {secs:.1f} s "
                     f"({v.rows / max(secs, 1e-9):,.0f} rows/s); audits passed")
        console.table(f"removed from {result.version.parent} by rule", ["rule", "rows"],
                      [(r, f"{n:,}") for r, n in result.by_rule.items()], stderr=True)

    console.step("verifying every version: each shard's sha256, row count and the content fingerprint")
    reports = verify_target(lake, None).reports
    for r in reports:
        console.info(f"  {'ok' if r.ok else 'FAILED'}: {r.target} ({plural(r.shards, 'shard')}, "
                     f"{plural(r.rows, 'row')})")
    if not all(r.ok for r in reports):
        raise RelakeError("verification failed right after building; the disk may be failing")

    release = lake.root / "demo" / "release-research"
    console.step(f"publishing 'research' to {release}: shards, version.json, SHA256SUMS, CHANGELOG.md, the "
                 "public removal manifest (hashes + categories only; crowd rule enforced) and report.html")
    if release.exists():
        shutil.rmtree(release)
    publish_release(lake, "research", release)
    meta = load_manifest(release / "manifest")
    console.table("public manifest: removed URL hashes by category", ["category", "hashes"],
                  [(c, f"{n:,}") for c, n in sorted(meta.counts.items())], stderr=True)
    console.info(f"  min crowd {meta.min_crowd}: the sensitive partner matches are hidden among the "
                 "non-sensitive removals of their category that no public rule explains")
    problems = check_sums(release)
    console.info(f"  SHA256SUMS: {'ok' if not problems else problems[0]}")
    planted = (inputs / "partner-urls.txt").read_text(encoding="utf-8").splitlines()[-1]
    [listed] = lookup_urls([planted], release / "manifest").urls
    console.info(f"  lookup of a partner-listed URL (as the partner spelled it): "
                 f"{'listed as ' + listed.category if listed.category else 'NOT listed'}")

    console.step("diffing the original against research (keyed by SAMPLE_ID; removals by rule from provenance)")
    d = diff_versions(lake, ORIGINAL, "research")
    console.info(f"  {d.rows_a:,} → {plural(d.rows_b, 'row')}: {d.removed:,} removed, {d.added:,} added, "
                 f"{d.changed:,} changed"
                 f" ({d.withheld_sensitive:,} removed by sensitive rules are counted but never listed) "
                 f"in {d.seconds:.1f} s")

    console.step("a downstream user's img2dataset copy (webdataset tars + parquet, re-sharded, re-ordered)")
    copy_src = inputs / "downloaded-rows.parquet"
    with connect(lake) as db:
        db.bind_parquet("src", resolve_sources([str(src)]))
        query("demo/copy_source").run(db.con, removed=str(lake.version_dir("research") / "removed.parquet"),
                                      out=str(copy_src))
    copy = lake.root / "demo" / "user-copy"
    cleaned = lake.root / "demo" / "user-copy-cleaned"
    for p in (copy, cleaned):
        if p.exists():
            shutil.rmtree(p)
    made = synth_copy(lake, str(copy_src), copy, shard_size=5000, hash_algo="md5")
    console.info(f"  {plural(made.rows, 'row')} in {plural(made.shards, 'shard')}, {made.successes:,} images "
                 f"downloaded → {copy}")
    report = check_copy(lake, copy, release / "manifest")
    console.info(f"  check against the published manifest: {report.affected:,} affected rows in "
                 f"{plural(sum(1 for s in report.shards if s.affected), 'shard')} (matched by canonical URL hash)")
    cleaned_report = clean_copy(lake, copy, release / "manifest", cleaned)
    console.info(f"  clean: {plural(cleaned_report.removed_rows, 'row')} and "
                 f"{plural(cleaned_report.removed_members, 'tar member')} "
                 f"dropped → {cleaned}")
    again = check_copy(lake, cleaned, release / "manifest")
    console.info(f"  check of the cleaned copy: {again.affected} affected")

    try_next = [
        f"relake --lake {lake.root} versions",
        f"relake --lake {lake.root} show research",
        f"relake --lake {lake.root} head research -n 5",
        f"relake --lake {lake.root} sql 'SELECT count(*) FROM research'",  # noqa: S608 (a shell line shown)
        f"relake --lake {lake.root} diff {ORIGINAL} research",
        f"relake --lake {lake.root} report {ORIGINAL} research-safe --out report.html",
        f"relake check {copy} --manifest {release / 'manifest'}",
        f"relake --lake {lake.root} blocklist show partner-urls",
        f"relake verify {release}",
        f"relake lookup 'http://example.com/x.jpg' --manifest {release / 'manifest'}",
    ]
    return DemoReport(lake.root, lake.version_names(), release, copy, cleaned, report.affected, again.affected,
                      time.perf_counter() - t0, try_next)


DEMO_BLOCKLISTS: tuple[tuple[str, KindName, str | None], ...] = (
    ("partner-urls", KindName.URL, None),
    ("partner-url-sha256", KindName.URL_SHA256, "canonical"),
    ("partner-image-md5", KindName.IMAGE_MD5, None),
    ("bad-domains", KindName.DOMAIN, None),
    ("takedown-keys", KindName.KEY, None),
    ("user-reports", KindName.KEY, None),
)

RESEARCH_SPEC = """\
# Re-LAION-style "research" release: partner hash lists (sensitive) hidden among user reports (a crowd no
# public rule explains: rows the `where` rule removes anyone holding the original recomputes, so they are no crowd)
name = "research"
base = "laion-demo"
min_crowd = 1000
[params]
unsafe_words = "(^|[^a-z])(nsfw|xxx|porn)([^a-z]|$)"
[[rule]]
id = "partner-urls"
blocklist = "partner-urls"
category = "safety"
sensitive = true
[[rule]]
id = "partner-url-hashes"
blocklist = "partner-url-sha256"
category = "safety"
sensitive = true
[[rule]]
id = "partner-image-hashes"
blocklist = "partner-image-md5"
category = "safety"
sensitive = true
side = "@SIDE@"
side_key = "SAMPLE_ID"
side_hash = "md5"
[[rule]]
id = "user-reports"
blocklist = "user-reports"
category = "safety"
[[rule]]
id = "unsafe-score"
where = "punsafe > 0.9 OR regexp_matches(lower(TEXT), $unsafe_words)"
category = "safety"
[[rule]]
id = "bad-domains"
blocklist = "bad-domains"
category = "legal"
[[rule]]
id = "takedown-requests"
blocklist = "takedown-keys"
category = "legal"
"""

SAFE_SPEC = """\
# the stricter "research-safe" variant: a strict subset of "research"
name = "research-safe"
base = "research"
[[rule]]
id = "nsfw-tag"
where = "NSFW <> 'UNLIKELY' OR punsafe > 0.5"
category = "safety"
"""


def plant_blocklists(lake: Lake, original: Path, out: Path) -> None:
    """Blocklists with planted hits of every kind, picked from the original, plus a LAION-style md5 side table."""
    out.mkdir(parents=True, exist_ok=True)
    with connect(lake) as db:
        register_canonical(db.con)
        query("build/url_host").run(db.con)
        db.bind_parquet("src", resolve_sources([str(original)]))
        q = query("demo/pick_rows")
        urls = q.rows(db.con, n=12, salt="urls")
        lines = [u for u, _, _ in urls[:8]]
        # the same links as a partner would list them: other case, default port, fragment (canonical match)
        lines += [_disguise(u) for u, _, _ in urls[8:]]
        _write_lines(out / "partner-urls.txt", lines)
        hashed = q.rows(db.con, n=10, salt="hashes")
        _write_lines(out / "partner-url-sha256.txt",
                     [url_sha256(u) or "" for u, _, _ in hashed])
        keys = q.rows(db.con, n=20, salt="keys")
        _write_lines(out / "takedown-keys.txt", [k for _, _, k in keys])
        reports = q.rows(db.con, n=1500, salt="reports")  # the benign crowd that hides the partner matches
        _write_lines(out / "user-reports.txt", [k for _, _, k in reports])
        query("demo/side_md5").run(db.con, out=str(out / "laion-md5.parquet"))
        imgs = q.rows(db.con, n=6, salt="images")
        _write_lines(out / "partner-image-md5.txt",
                     [HASH_ALGORITHMS["md5"].hexdigest(f"image-bytes-{k}".encode()) for _, _, k in imgs])
        host = query("demo/top_domain").rows(db.con, rank=3)
        parent = str(host[0][0]).split(".", 1)[1] if host else "example.invalid"
        _write_lines(out / "bad-domains.txt", ["# registrable domains: every sub-domain is removed too", parent])


def _disguise(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    host, slash, path = rest.partition("/")
    port = ":443" if scheme.lower() == "https" else ":80"
    if ":" in host or "@" in host or "[" in host:
        port = ""
    return f"{scheme.upper()}://{host.upper()}{port}{slash}{path}#from-partner"


def _write_lines(path: Path, lines: list[str]) -> None:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
