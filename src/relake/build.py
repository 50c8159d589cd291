"""base version + rules -> derived version with per-row provenance, audited, published atomically.

Pipeline (every step is a file in ``queries/build`` or ``queries/audit``):
1. match: each rule inserts (file, position, rule, how) into ``matches``; blocklists are semi/inner-joined,
   predicates filter; nothing is positional but the output. URL, url-sha256 and domain rules match through the
   base shards' URL cache (urlcache.py: computed once, at ingest or here) instead of canonicalising every URL.
   ``plan_build`` (``--dry-run``) stops after this step and reports the counts, writing nothing.
2. removed: matches grouped per base row, with every rule and how it matched, key, canonical URL sha256.
3. write: by default the deletion vector (``vectors``): the sorted (shard, position) of every row dropped since
   the lineage's root, the base's and this build's. With ``materialize``: shard i of the result = shard i of the
   base without its removed positions, in the base's order (a bitmask filter, no join, so order is kept); one
   single-threaded DuckDB per shard so the bytes are the same on every run and thread count, shards written in
   parallel.
4. audit (must return zero rows): every rule re-run over the written shards finds nothing; per shard
   base rows = kept + removed; kept + removed fingerprints add up to the base's bucket by bucket.
5. publish: one create-only rename of the staging folder.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
from duckdb import ColumnExpression, ConstantExpression, StarExpression

from relake import __version__
from relake.blocklist import Blocklist, load_blocklist
from relake.canonical import CANONICAL_VERSION, register_canonical
from relake.db import Db, connect, max_threads, write_parquet_stable
from relake.engine import Engine, LocalEngine
from relake.errors import AuditError, InputError, NotFoundError, RelakeError, SpecError, duckdb_errors
from relake.fingerprint import (
    cached_row_hashes,
    combine,
    fingerprint_src,
    is_current,
    names_tag,
    row_hash_stats,
    subtract,
)
from relake.hamming import HammingIndex, hex_hashes
from relake.identity import (
    REMOVED_FILE,
    check_owned,
    check_unchanged,
    hash_with_identity,
    note_identities,
    note_record,
    owned_record,
)
from relake.ingest import shard_facts
from relake.kinds import BLOCKLIST_KINDS, HASH_ALGORITHMS, BlocklistKind
from relake.lake import Lake, checkpoint, make_private, validate_name
from relake.pdq import DEFAULT_MAX_DISTANCE, PDQ_COLUMN
from relake.predicate import check_where, embed
from relake.record import Fingerprint, Roles, Shard, Vector, Version, sha256_file
from relake.report import HIDDEN, Report, a_or_an, json_meta, rounded
from relake.sources import source_paths
from relake.spec import Rule, Spec
from relake.sql import all_queries, query
from relake.urlcache import UrlCaches, bind_url_caches, ensure_url_caches
from relake.vectors import (
    DELETES_FILE,
    RESERVED_COLUMNS,
    SurvivingJob,
    read_positions,
    surviving,
    surviving_label,
    write_deletes,
    write_surviving,
)

_VARCHAR = duckdb.sqltypes.VARCHAR


@dataclass(frozen=True)
class BuildResult(Report):
    """What ``relake build`` reports: the new version, rows removed (by rule, by public category), the time."""

    json_computed: ClassVar[tuple[str, ...]] = ("name", "base", "rows", "fingerprint")

    version: Version = field(repr=False, metadata=HIDDEN)
    removed: int
    by_rule: dict[str, int]  # every rule of the spec, in spec order, 0 included (a row counts for each rule it matched)
    by_category: dict[str, int]
    unmatched_entries: dict[str, int]  # blocklist rules: how many distinct list entries matched no base row
    seconds: float = field(default=0.0, metadata=json_meta(convert=rounded))
    url_cache: str | None = field(default=None, metadata=json_meta(omit_none=True))  # BuildPlan.url_cache

    @property
    def name(self) -> str:
        return self.version.name

    @property
    def base(self) -> str | None:
        return self.version.parent

    @property
    def rows(self) -> int:
        return self.version.rows

    @property
    def fingerprint(self) -> str:
        return self.version.fingerprint.value


@dataclass(frozen=True)
class BuildPlan(Report):
    """What ``relake build --dry-run`` reports, as sqlmesh's plan: what the build would remove, nothing written.

    ``url_cache``: how the URL, url-sha256 and domain rules matched: ``reused``, ``built`` or ``rebuilt`` (a
    damaged cache thrown away) through the URL cache (urlcache.py), ``computed`` without one (a dry run never
    writes one), ``none`` when no rule reads URLs."""

    json_computed: ClassVar[tuple[str, ...]] = ("kept",)

    name: str
    base: str
    rows: int  # the base's
    removed: int
    by_rule: dict[str, int]  # every rule of the spec, in spec order, 0 included
    by_category: dict[str, int]
    unmatched_entries: dict[str, int]  # blocklist rules: distinct list entries that matched no base row
    url_cache: str
    seconds: float = field(default=0.0, metadata=json_meta(convert=rounded))

    @property
    def kept(self) -> int:
        return self.rows - self.removed


@dataclass(frozen=True)
class _Plan:
    rule: Rule
    blocklist: Blocklist | None
    side_paths: tuple[Path, ...] = ()


# columns the build adds to its views of the base (views base_keyed and base_flagged; audit/base_split excludes them)
_HELPER_COLUMNS = frozenset(("relake_removed", "relake_file", "relake_pos", "relake_url", "relake_caption",
                             "relake_id", "filename", "file_row_number"))


def build_version(
    lake: Lake,
    spec: Spec,
    *,
    threads: int | None = None,
    memory_limit: str | None = None,
    progress: Callable[[int], None] | None = None,
    full_audit: bool = False,
    engine: Engine | None = None,
    materialize: bool = False,
) -> BuildResult:
    """``engine`` runs the per-shard writes (default: a local pool of ``threads`` workers); same bytes either way.

    By default the version is stored as a deletion vector (``vectors``): the base's lineage root's shards and the
    sorted positions of the rows it drops, every generation composed; nothing of the base is rewritten or
    re-hashed (its shards' size and identity are checked, ``identity.check_unchanged``). ``materialize`` writes
    shard *i* = the surviving rows of base shard *i* instead, re-hashing the base shards beside the build.

    ``full_audit`` also re-runs every rule over the written shards (audit/survivors_match); without it, that
    no written row matches follows from audit/matches_removed, audit/shard_counts and audit/subset."""
    result = _build(lake, spec, threads=threads, memory_limit=memory_limit, progress=progress,
                    full_audit=full_audit, engine=engine, materialize=materialize, dry_run=False)
    assert isinstance(result, BuildResult)
    return result


def plan_build(lake: Lake, spec: Spec, *, threads: int | None = None, memory_limit: str | None = None) -> BuildPlan:
    """``relake build --dry-run``: run the spec's rules over the base and count, writing nothing to the lake (a URL
    cache is used when every shard has a sound one, never written: without one the rules compute the URLs)."""
    result = _build(lake, spec, threads=threads, memory_limit=memory_limit, dry_run=True)
    assert isinstance(result, BuildPlan)
    return result


def _build(
    lake: Lake,
    spec: Spec,
    *,
    threads: int | None = None,
    memory_limit: str | None = None,
    progress: Callable[[int], None] | None = None,
    full_audit: bool = False,
    engine: Engine | None = None,
    materialize: bool = False,
    dry_run: bool,
) -> BuildResult | BuildPlan:
    start = time.perf_counter()
    validate_name(spec.name)
    lake.require_absent(spec.name)
    base = lake.load_version(spec.base)
    base_dir = lake.version_dir(spec.base)
    clash = [c.name for c in base.schema if c.name.lower() in _HELPER_COLUMNS]
    if clash:
        raise InputError(f"{spec.base}: column {clash[0]!r} has a name relake uses for its own bookkeeping in a "
                         "build; rename it in a new version of the base (e.g. with a view of the shards) first")
    if not materialize and any(c.name.lower() in RESERVED_COLUMNS for c in base.schema):
        raise InputError(f"{spec.base}: a column named file_index would hide the row positions a deletion vector "
                         "is read by; build with --materialize, or rename it in a new version of the base")
    plans = [_plan(lake, r, base.roles) for r in spec.rules]
    paths = [base.shard_path(base_dir, s) for s in base.shards]
    for s, p in zip(base.shards, paths, strict=True):
        if not p.is_file() or p.stat().st_size != s.bytes:
            raise InputError(f"{p}: shard of {spec.base} is missing or changed size; run `relake verify {spec.base}`")
    base_deletes = None
    if base.vector is not None:  # the rows of the base are its root's shards without these
        check_owned(base, base_dir, base.vector.path, spec=spec.base)
        base_deletes = base_dir / base.vector.path
    # a vector build reads no whole shard: their size and identity are checked, not their bytes (verify and
    # publish re-hash them); shards this lake never hashed (no identity noted) are hashed beside the build. A dry
    # run (a plan, nothing written) checks the sizes only and reads only the columns its rules need
    confirmed = not materialize and not dry_run and check_unchanged(lake, base, base_dir, spec.base)
    if paths:
        _check_base_types(spec.base, paths[0])
    readable = _readable(lake, paths, plans)
    _check_wheres(spec, paths, readable)
    threads = min(threads, max_threads()) if threads else None
    engine = engine or LocalEngine(max(1, threads or os.cpu_count() or 1))
    # a DuckDB error no step handled (say, an undecodable page of a base shard) becomes a one-line error; a base
    # shard whose bytes changed since its version was recorded is named as the cause when it is one
    # a vector build reads no whole shard, nor does a dry run (only the columns its rules need): no whole-shard
    # sha256 then (the sizes, and for a vector build the identities, were checked above)
    with (_hash_base([] if confirmed or dry_run else paths, threads) as (hasher, digests),
          duckdb_errors(f"building from {spec.base} failed:", then="; nothing was published",
                        check=lambda: None if dry_run else _check_base_digests(spec.base, base, paths, digests)),
          connect(lake, memory_limit=memory_limit, threads=threads, readable=readable) as db):
        register_canonical(db.con)
        query("build/url_host").run(db.con)
        plain = _bind_base(db, paths, base.roles, base_deletes)
        if not is_current(base.fingerprint.algorithm) and not dry_run:  # by an older relake: recompute to audit against
            db.bind_parquet("src", paths)
            base = replace(base, fingerprint=fingerprint_src(db))
        caches = _url_caches(lake, db, base, paths, plans, write=not dry_run)
        if caches is not None:
            bind_url_caches(db, caches, plain)
        _run_rules(db, plans, spec, base.roles, [c.name for c in base.schema], cached=caches is not None)
        cache_status = caches.status if caches is not None else "computed" if _reads_urls(plans) else "none"
        q = query
        q("build/create_rule_info").run(db.con)
        for pl in plans:
            q("build/insert_rule_info").run(db.con, rule=pl.rule.id, category=pl.rule.category,
                                            sensitive=pl.rule.sensitive)
        image_algo = _bind_base_images(db, plans, base.roles, [c.name for c in base.schema])
        q("build/img_to_all").run(db.con)
        q("build/removed").run(db.con)
        bad = q("audit/matches_removed").rows(db.con)
        if bad:
            raise AuditError(f"audit matches_removed failed: {len(bad)}+ matched row(s) of rule {bad[0][2]!r} "
                             "are not in the removed rows; nothing was published")
        checkpoint("build:after-match")
        removed_total = int(q("build/removed_count").rows(db.con)[0][0])
        matched = {str(r): int(n) for r, n in q("build/removed_by_rule").rows(db.con)}
        by_rule = {p.rule.id: matched.get(p.rule.id, 0) for p in plans}  # a rule that matched nothing shows as 0
        unmatched = {p.rule.id: _unmatched(db, p.rule.id, p.blocklist)
                     for p in plans if p.blocklist is not None}
        by_category = {str(c): int(n) for c, n, _ in q("build/removed_stats").rows(db.con)}
        by_public = {str(c): int(n) for c, n in q("build/removed_by_public_category").rows(db.con)}
        if dry_run:
            return BuildPlan(spec.name, base.name, base.rows, removed_total, by_rule, by_category, unmatched,
                             cache_status, time.perf_counter() - start)
        codec_rows = q("db/shard_codec").rows(db.con, file=plain[0]) if plain else []  # none: no row groups
        codec = str(codec_rows[0][0]).lower() if codec_rows else "zstd"
        codec = codec if codec in ("snappy", "zstd") else "zstd"

        with lake.staging(spec.name) as staging:
            deletes = staging.path / DELETES_FILE
            dropped = write_deletes(_composed(db, base_deletes), deletes) if not materialize else 0
            if materialize:
                data = staging.path / "data"
                data.mkdir()
                outs = [data / f"part-{i:05d}.parquet" for i in range(len(paths))]
                inherited = read_positions(base_deletes, len(paths)) if base_deletes else [[] for _ in paths]
                masks = [sorted([*inherited[i], *_positions(db, i)]) for i in range(len(paths))]
                jobs: list[SurvivingJob] = [(str(paths[i].absolute()), outs[i].absolute(), base.shards[i].rows,
                                             masks[i], codec, memory_limit) for i in range(len(paths))]
                engine.map(write_surviving, jobs, label=surviving_label,
                           on_done=(lambda: progress(1)) if progress else None)
                missing = [o for o in outs if not o.is_file()]
                if missing:
                    raise RelakeError(f"{missing[0]} was written by the {engine.name} engine but is not visible "
                                      "here; the lake must be on a file system every worker shares; nothing was "
                                      "published")
            else:
                outs = []
                if progress:
                    progress(len(paths))
            checkpoint("build:after-write")
            out_digests = [hasher.submit(hash_with_identity, o) for o in outs]  # beside the audit's scans
            _check_base_digests(spec.base, base, paths, digests)  # the audit may use the base's recorded sums
            kept = [shard_facts(db, o, with_hash=False) for o in outs]
            fp_kept, row_hash, kept_rows = _audit(db, spec, plans, base, paths, kept, outs, rerun_rules=full_audit,
                                                  deletes=None if materialize else deletes)
            hashed = [d.result() for d in out_digests]
            kept = [replace(k, sha256=digest, identity=identity) for k, (digest, identity) in zip(kept, hashed,
                                                                                                  strict=True)]
            # streamed (Arrow batches), so millions of removed rows never sit in memory at once
            removed_path = staging.path / REMOVED_FILE
            write_parquet_stable(db.con.sql(q("build/removed_rows").text).to_arrow_reader(), removed_path)
            fetched = pq.ParquetFile(removed_path).metadata.num_rows
            if fetched != removed_total:
                raise AuditError(f"audit removed_rows failed: {fetched:,} removed rows were fetched "
                                 f"from the base, not {removed_total:,}; nothing was published")
            if materialize:
                shards = tuple(Shard(f"data/{o.name}", k.rows, k.bytes, k.sha256, k.schema)
                               for o, k in zip(outs, kept, strict=True))
                schema = kept[0].schema if kept else base.schema
                vector = None
            else:  # the root's shards, by their paths from this version's folder (a sibling of the base's)
                shards = tuple(replace(s, path=_sibling_path(base, s)) for s in base.shards)
                schema = shard_facts(db, paths[0], with_hash=False).schema if paths else base.schema
                root = base.vector.root if base.vector is not None else base.name
                vector = Vector(root=root, path=DELETES_FILE, kept=tuple(kept_rows), dropped=dropped)
            version = Version(
                name=spec.name,
                kind="derived",
                parent=base.name,
                roles=base.roles,
                schema=schema,
                rows=sum(kept_rows),
                bytes=sum(s.bytes for s in shards),
                shards=shards,
                fingerprint=fp_kept,
                tool={"relake": __version__, "duckdb": duckdb.__version__},
                storage="lake" if materialize else "vector",
                recipe={
                    "spec": spec.text,
                    "spec_sha256": spec.sha256,
                    "base": base.name,
                    "base_fingerprint": base.fingerprint.value,
                    "rules": [_rule_record(p) for p in plans],
                    "params": spec.params,
                    "min_crowd": spec.min_crowd,
                    "canonical_url_version": CANONICAL_VERSION,
                    "queries": {n: qq.sha256 for n, qq in sorted(all_queries().items())
                                if n.startswith(("build/", "audit/", "cache/", "canonical/", "fingerprint/"))},
                    "output_compression": codec,
                },
                stats={"removed_rows": removed_total, "removed_by_rule": by_rule, "unmatched_entries": unmatched,
                       "removed_by_category": by_category, "removed_by_public_category": by_public,
                       "removed_image_hash": image_algo, "row_hash": row_hash},
                # the provenance, and the deletion vector (what the rows are), checked before each read
                files=(owned_record(staging.path, REMOVED_FILE),
                       *(() if materialize else (owned_record(staging.path, DELETES_FILE),))),
                vector=vector,
            )
            (staging.path / "version.json").write_text(version.to_json(), encoding="utf-8")
            make_private(removed_path, staging.path / "version.json")  # removed rows; the spec with its params
            if not materialize:
                make_private(deletes)  # positions of removed rows: as private as removed.parquet
            checkpoint("build:before-publish")
            lake.publish(staging, spec.name)
    folder = lake.version_dir(spec.name)  # the identities the shards had when hashed, by their final paths
    note_record(lake, folder)
    if materialize:  # a vector version's shards are its root's, noted when they were hashed
        note_identities(lake, [(version.shard_path(folder, sh), sh.sha256, k.identity)
                               for sh, k in zip(version.shards, kept, strict=True) if k.identity is not None])
    return BuildResult(version, removed_total, by_rule, by_category, unmatched, time.perf_counter() - start,
                       cache_status)


@contextmanager
def _hash_base(paths: Sequence[Path], threads: int | None) -> Iterator[tuple[ThreadPoolExecutor, list[Future[str]]]]:
    """sha256 of every base shard, computed beside the build: a shard whose bytes changed since its version
    was recorded (same size, other values: DuckDB reads it without complaint) must not become a new version.
    Yields the pool too, for the output shards' sha256 (hashlib releases the GIL: the threads run in parallel)."""
    pool = ThreadPoolExecutor(max_workers=max(1, min(max(len(paths), 1), threads or os.cpu_count() or 1)))
    try:
        yield pool, [pool.submit(sha256_file, p) for p in paths]
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


def _sibling_path(base: Version, shard: Shard) -> str:
    """A base shard's path as a version beside the base records it: absolute (referenced in place), the base's
    own relative path when the base is a vector version too (the same root), else through the base's folder."""
    if Path(shard.path).is_absolute() or base.vector is not None:
        return shard.path
    return (Path("..") / base.name / shard.path).as_posix()


def _composed(db: Db, base_deletes: Path | None) -> duckdb.DuckDBPyRelation:
    """The rows a vector build drops, as (shard, position): the base's deletion vector's and this build's."""
    new = db.con.table("removed").select(ColumnExpression("shard"), ColumnExpression("position"))
    if base_deletes is None:
        return new
    return new.union(db.con.read_parquet(db.plain_path(base_deletes)).select(ColumnExpression("shard"),
                                                                               ColumnExpression("position")))


def _check_base_digests(name: str, base: Version, paths: Sequence[Path], digests: Sequence[Future[str]]) -> None:
    if not digests:  # a vector build hashes no base shard (their identities were checked)
        return
    for shard, path, digest in zip(base.shards, paths, digests, strict=True):
        try:
            actual = digest.result()
        except OSError as exc:
            raise InputError(f"{path}: cannot read a shard of {name} ({exc.strerror})") from exc
        if actual != shard.sha256:
            raise InputError(f"{path}: shard of {name} changed since it was recorded (sha256 {actual[:16]}… differs "
                             f"from the manifest's {shard.sha256[:16]}…); run `relake verify {name}`; "
                             "nothing was published")


def _rule_record(p: _Plan) -> dict[str, Any]:
    r = p.rule
    rec: dict[str, Any] = {"id": r.id, "category": r.category, "sensitive": r.sensitive}
    if p.blocklist is not None:
        b = p.blocklist
        rec["blocklist"] = {"name": b.name, "revision": b.revision, "kind": b.kind, "hash_of": b.hash_of,
                            "sha256": b.sha256, "entries": b.unique_entries}
        for k in ("column", "side", "side_key", "side_hash", "side_join"):
            if getattr(r, k) is not None:
                rec[k] = getattr(r, k)
    else:
        rec["where"] = r.where
    return rec


def _plan(lake: Lake, rule: Rule, roles: Roles) -> _Plan:
    if rule.blocklist is None:
        return _Plan(rule, None)
    try:
        bl = load_blocklist(lake, rule.blocklist)
    except NotFoundError as exc:  # no such name, or no such revision of it
        raise SpecError(f"rule {rule.id!r}: {exc}; import lists with `relake blocklist add`") from None
    kind = _kind(rule, bl)
    if kind.role and getattr(roles, kind.role) is None:
        raise SpecError(f"rule {rule.id!r}: {a_or_an(bl.kind)} blocklist needs {a_or_an(kind.role)} column, and the "
                        "base has none")
    if kind.reads != "image" and (rule.column or rule.side):
        raise SpecError(f"rule {rule.id!r}: 'column'/'side' only apply to image-hash blocklists")
    side: list[Path] = []
    if rule.side:
        side = source_paths(lake, rule.side)
    return _Plan(rule, bl, tuple(side))


def _bind_base(db: Db, paths: Sequence[Path], roles: Roles, deletes: Path | None = None) -> list[str]:
    """Views base (all columns + filename, file_row_number), rows (file, pos, url, caption, id) and base_keyed
    (all columns + relake_file, relake_pos, relake_url, relake_caption, relake_id); with ``deletes`` (a vector
    base) without the rows that deletion vector drops, positions staying those of the root's shards."""
    plain = [db.plain_path(p) for p in paths]
    rel = db.con.read_parquet(plain, filename=True, file_row_number=True)
    if deletes is not None:
        rel = surviving(db, rel, deletes)
    rel.create_view("base", replace=True)

    def role(col: str | None, alias: str) -> Any:
        expr = ColumnExpression(col) if col else ConstantExpression(None)
        return expr.cast(_VARCHAR).alias(alias)

    rows = rel.select(
        ColumnExpression("filename").alias("file"),
        ColumnExpression("file_row_number").alias("pos"),
        role(roles.url, "url"), role(roles.caption, "caption"), role(roles.id, "id"),
    )
    rows.create_view("rows", replace=True)
    rel.select(  # the base's own columns, then what the audit scan fetches of each removed row
        StarExpression(exclude=["filename", "file_row_number"]),
        ColumnExpression("filename").alias("relake_file"), ColumnExpression("file_row_number").alias("relake_pos"),
        role(roles.url, "relake_url"), role(roles.caption, "relake_caption"), role(roles.id, "relake_id"),
    ).create_view("base_keyed", replace=True)
    query("build/create_shard_files").run(db.con)
    for i, p in enumerate(plain):
        query("build/insert_shard_file").run(db.con, file=p, shard=i)
    return plain


def _image_column(rule: Rule, algo: str, columns: Sequence[str]) -> str | None:
    if rule.column:
        if rule.column not in columns:
            raise SpecError(f"rule {rule.id!r}: column {rule.column!r} is not in the base "
                            f"(columns: {', '.join(columns)})")
        return rule.column
    found = [c for c in columns if c.lower() == algo]
    return found[0] if found else None


def _bind_images(db: Db, plan: _Plan, algo: str, roles: Roles, columns: Sequence[str]) -> str:
    """Define view img(file, pos, img) for an image-hash rule; returns how it matched."""
    rule = plan.rule
    if rule.side:
        side = db.con.read_parquet([db.plain_path(p) for p in plan.side_paths])
        key = rule.side_key or (roles.id if (rule.side_join or "id") == "id" else roles.url)
        hcol = rule.side_hash or algo
        for c in (key, hcol):
            if c is None or c not in side.columns:
                raise SpecError(f"rule {rule.id!r}: side table {rule.side!r} has no column {c!r} "
                                f"(columns: {', '.join(side.columns)}); set side_key/side_hash")
        assert key is not None
        side.select(ColumnExpression(key).alias("k"), ColumnExpression(hcol).alias("img")).create_view(
            "side", replace=True)
        join = rule.side_join or "id"
        if getattr(roles, join) is None:
            raise SpecError(f"rule {rule.id!r}: the base has no {join} column to join the side table on")
        query(f"build/img_side_by_{join}").run(db.con)
        return f"image-{algo}:side"
    col = _image_column(rule, algo, columns)
    if col is None:
        raise SpecError(f"rule {rule.id!r}: the base has no {algo} column; name one with 'column' or give a "
                        "'side' table holding image hashes")
    db.con.table("base").select(
        ColumnExpression("filename").alias("file"), ColumnExpression("file_row_number").alias("pos"),
        ColumnExpression(col).alias("img"),
    ).create_view("img_src", replace=True)
    query("build/img_column").run(db.con)
    return f"image-{algo}:column"


def _reads_urls(plans: Sequence[_Plan]) -> bool:
    """Whether a rule of the spec could match through the URL cache."""
    return any(p.blocklist is not None and _cacheable(_kind(p.rule, p.blocklist), p.blocklist) for p in plans)


def _cacheable(kind: BlocklistKind, bl: Blocklist) -> bool:
    return kind.match_cached is not None and bl.hash_of != "raw"


def _url_caches(lake: Lake, db: Db, base: Version, paths: Sequence[Path], plans: Sequence[_Plan], *,
                write: bool) -> UrlCaches | None:
    """The base shards' URL caches when a rule can use them (computed now if missing and ``write``)."""
    if base.roles.url is None or not paths or not _reads_urls(plans):
        return None
    return ensure_url_caches(lake, db, base.shards, paths, base.roles.url, write=write)


def _run_rules(db: Db, plans: Sequence[_Plan], spec: Spec, roles: Roles, columns: Sequence[str], *,
               cached: bool = False) -> None:
    """Every rule's matches into table matches; ``cached``: views url_cache and cache_files describe view rows."""
    query("build/create_matches").run(db.con)
    for p in plans:
        r = p.rule
        with duckdb_errors(f"rule {r.id!r} failed:", as_=SpecError):
            if p.blocklist is None:
                _run_where(db, r, spec)
                continue
            bl = p.blocklist
            kind = _kind(r, bl)
            db.con.read_parquet(db.plain_path(bl.path)).create_view("bl", replace=True)
            raw = bl.hash_of == "raw"
            algo = kind.algorithm.name if kind.algorithm is not None else None
            if kind.perceptual:
                how = _bind_images(db, p, PDQ_COLUMN, roles, columns)
                _bind_near(db, DEFAULT_MAX_DISTANCE)
            elif kind.reads == "image":
                assert algo is not None
                how = _bind_images(db, p, algo, roles, columns)
            else:
                how = f"{kind.name}:{'raw' if raw else 'canonical'}" if kind.hash_of else kind.name
            use_cache = cached and _cacheable(kind, bl)
            # binds $rule and whichever of $algo, $raw, $how it declares
            match = query(kind.match_cached if use_cache and kind.match_cached else kind.match)
            given: dict[str, Any] = {"rule": r.id, "algo": algo, "raw": raw, "how": how}
            match.run(db.con, **{k: v for k, v in given.items() if k in match.params})


_NEAR_BATCH = 1 << 20  # base image hashes read per batch by _bind_near


def _bind_near(db: Db, max_distance: int) -> None:
    """View near(file, pos, entry): the base rows of view img whose PDQ hash is within ``max_distance`` bits of an
    entry of view bl, by a multi-index Hamming search (``relake.hamming``, exact: a brute-force scan's pairs),
    reading the base's hashes in batches. Image hashes that are not 64 hex digits (NULL, empty) match nothing."""
    entries = db.con.table("bl").to_arrow_table().column("entry").to_pylist()
    listed, entry_rows = hex_hashes(entries)
    index = HammingIndex(listed, max_distance)
    parts: list[pa.Table] = []
    for batch in db.con.table("img").to_arrow_reader(_NEAR_BATCH):
        base_hashes, base_rows = hex_hashes(batch.column("img").to_pylist())
        q, e, _ = index.search(base_hashes)
        rows = pa.array(base_rows[q])
        parts.append(pa.table({"file": batch.column("file").take(rows), "pos": batch.column("pos").take(rows),
                               "entry": pa.array([entries[i] for i in entry_rows[e]], pa.string())}))
    near = pa.concat_tables(parts) if parts else pa.table({"file": pa.array([], pa.string()),
                                                           "pos": pa.array([], pa.int64()),
                                                           "entry": pa.array([], pa.string())})
    db.con.from_arrow(near).create_view("near", replace=True)


def _altered_type(t: pa.DataType) -> str | None:
    """What a derived version's shards (DuckDB's parquet writer) would store a column of type ``t`` as, when that
    is not ``t`` itself in a way that changes its meaning; None when it is kept."""
    if pa.types.is_float16(t):
        return "float32"
    if pa.types.is_timestamp(t) and t.tz is not None and t.tz.upper() not in ("UTC", "+00:00", "ETC/UTC", "Z"):
        return f"timestamp[{t.unit}, tz=UTC] (the time zone {t.tz} is lost)"
    if pa.types.is_duration(t):
        return "int64 (the unit is lost)"
    if pa.types.is_fixed_size_binary(t):
        return "binary (the size is lost)"
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t):
        inner = _altered_type(t.value_type)
        return None if inner is None else f"a list of {inner}"
    if pa.types.is_struct(t):
        for i in range(t.num_fields):
            inner = _altered_type(t.field(i).type)
            if inner is not None:
                return f"a struct whose field {t.field(i).name!r} becomes {inner}"
    return None


def _check_base_types(base: str, first_shard: Path) -> None:
    """Refuse, before any row is read, a base whose columns a derived version could not keep as they are: types
    DuckDB's writer changes (float16, a non-UTC time zone, duration, fixed-size binary) and names that differ
    only by case (DuckDB would rename one, e.g. url -> url_1). The schema audit compares DuckDB's types, which
    cannot see these."""
    schema = pq.read_schema(first_shard)
    seen: dict[str, str] = {}
    for f in schema:
        if f.name.lower() in seen:
            raise InputError(f"{base}: columns {seen[f.name.lower()]!r} and {f.name!r} differ only by case; a "
                             "derived version would rename one. Rename it in a new version of the base first")
        seen[f.name.lower()] = f.name
        altered = _altered_type(f.type)
        if altered is not None:
            raise InputError(f"{base}: column {f.name!r} is {f.type}, which a derived version would store as "
                             f"{altered}. Convert it in a new version of the base first (e.g. cast it), so the "
                             "release says what the data is")


def _readable(lake: Lake, paths: Sequence[Path], plans: Sequence[_Plan]) -> list[Path]:
    """What a build's sandboxed DuckDB may read: the lake (blocklists, staging, spill), the base's shard folders and
    the side tables' folders; nothing else (rules run on this connection)."""
    files = [*paths, *(sp for p in plans for sp in p.side_paths)]
    # DuckDB checks the file it opens: a shard reached through a symlink needs its target's folder too
    return [lake.root, *sorted({f.absolute().parent for f in files} | {f.resolve().parent for f in files})]


def _unmatched(db: Db, rule: str, bl: Blocklist) -> int:
    """How many distinct entries of a blocklist rule's list matched no base row."""
    return bl.unique_entries - int(query("build/entries_matched").rows(db.con, rule=rule)[0][0])


def _kind(rule: Rule, bl: Blocklist) -> BlocklistKind:
    kind = BLOCKLIST_KINDS.get(bl.kind)
    if kind is None:
        raise SpecError(f"rule {rule.id!r}: blocklist kind {bl.kind!r} is not supported")
    return kind


def _run_where(db: Db, rule: Rule, spec: Spec) -> None:
    """Run a `where` rule: vetted (predicate.check_where) on this very connection, then its match query."""
    assert rule.where is not None
    bound = check_where(db.con, rule.id, rule.where, spec.params)
    text = embed(query("build/match_where").text, rule.where)
    # planning errors quote the spec's own code (column and function names); any other may quote a row's value
    with duckdb_errors(f"rule {rule.id!r}: 'where' failed:", as_=SpecError, strict=True,
                       planning=f"rule {rule.id!r}: 'where' is not valid over {spec.base}:"):
        db.con.execute(text, {**bound, "rule": rule.id})


def _check_wheres(spec: Spec, paths: Sequence[Path], readable: Sequence[Path]) -> None:
    """Vet every `where` of the spec against the base's schema before any row is read (seconds at any size)."""
    wheres = [r for r in spec.rules if r.where is not None]
    if not wheres:
        return
    with connect(None, threads=1, readable=readable) as db:
        register_canonical(db.con)
        query("build/url_host").run(db.con)
        db.con.read_parquet([db.plain_path(p) for p in paths], filename=True, file_row_number=True).create_view(
            "base", replace=True)
        for r in wheres:
            assert r.where is not None
            check_where(db.con, r.id, r.where, spec.params)


def _bind_base_images(db: Db, plans: Sequence[_Plan], roles: Roles, columns: Sequence[str]) -> str | None:
    """Point view img at the base's own image hashes (a hash column, or the first image rule's side table)
    so removed rows keep them; partner lists never feed this. Returns the hash algorithm, if any."""
    for c in columns:
        if c.lower() in HASH_ALGORITHMS:
            db.con.table("base").select(
                ColumnExpression("filename").alias("file"), ColumnExpression("file_row_number").alias("pos"),
                ColumnExpression(c).alias("img"),
            ).create_view("img_src", replace=True)
            query("build/img_column").run(db.con)
            return c.lower()
    for p in plans:
        kind = BLOCKLIST_KINDS.get(p.blocklist.kind) if p.blocklist is not None else None
        if kind is not None and kind.reads == "image" and kind.algorithm is not None:
            _bind_images(db, p, kind.algorithm.name, roles, columns)
            return kind.algorithm.name
    query("build/img_none").run(db.con)
    return None


def _positions(db: Db, shard: int) -> list[int]:
    return [int(r[0]) for r in query("build/removed_positions").rows(db.con, shard=shard)]


def _audit(db: Db, spec: Spec, plans: Sequence[_Plan], base: Version, base_paths: Sequence[Path],
           kept: Sequence[Any], outs: Sequence[Path], *, rerun_rules: bool = False, deletes: Path | None = None
           ) -> tuple[Fingerprint, dict[str, Any], list[int]]:
    """Run the audits; returns the new version's fingerprint, its per-shard row-hash sums (stats row_hash) and
    its rows per shard. With ``deletes`` (a vector build: nothing written) the kept rows of a shard are by
    definition its base rows without the removed ones, so their counts and sums follow from the base's and the
    removed rows' (no written shard to compare them with); --full-audit re-runs the rules over them."""
    q = query
    base_rows = base.shard_rows()
    removed_per = {int(s): int(n) for s, n in db.con.table("removed").aggregate(
        "shard, count(*)", "shard").fetchall()}
    shard_kept = [k.rows for k in kept] if deletes is None else [
        n - removed_per.get(i, 0) for i, n in enumerate(base_rows)]
    # 1. per shard: base rows = kept + removed, and the written shard has the base's columns and types
    q("build/create_shard_counts").run(db.con)
    for i, (n, k) in enumerate(zip(base_rows, shard_kept, strict=True)):
        q("build/insert_shard_count").run(db.con, shard=i, base_rows=n, kept_rows=k)
    bad = q("audit/shard_counts").rows(db.con)
    if bad:
        raise AuditError(f"audit shard_counts failed: shard {bad[0][0]} has {bad[0][1]} base rows but "
                         f"{bad[0][2]} kept + {bad[0][3]} removed; nothing was published")
    if base_paths:
        want = shard_facts(db, base_paths[0], with_hash=False).schema  # as this DuckDB reads the base
        for i, k in enumerate(kept):
            if k.schema != want:
                raise AuditError(f"audit schema failed: written shard {i} has columns "
                                 f"{', '.join(f'{c.name} {c.type}' for c in k.schema)}, not the base's "
                                 f"{', '.join(f'{c.name} {c.type}' for c in want)}; nothing was published")
    # 2. subset, per shard: the written shard holds exactly its base shard's rows minus the removed ones (count
    #    and sum of whole-row hashes, all computed here); then the new fingerprint follows from the base's by
    #    subtracting the removed rows' md5 fingerprint, bucket by bucket, with no md5 pass over the output.
    #    When the base's manifest has its per-shard hash sums (made by this DuckDB version; the base shards'
    #    sha256 was checked before the audit), only the removed rows are read back from the base.
    cached = cached_row_hashes(base.stats, len(base.shards))
    q("build/base_flagged").run(db.con)
    q("build/split_input_all" if cached is None else "build/split_input_removed").run(db.con)
    split = q("audit/base_split").rows(db.con, names=names_tag(c.name for c in base.schema))
    q("build/removed_full").run(db.con)  # before --full-audit rebinds base and shard_files to the output
    plain_base = [db.plain_path(p) for p in base_paths]
    base_sums = {f: [0, 0] for f in plain_base}
    removed_sums = {f: [0, 0] for f in plain_base}
    for f, removed, _b, n, h, _lo, _hi in split:
        for acc in (base_sums[str(f)], *((removed_sums[str(f)],) if removed else ())):
            acc[0] += int(n)
            acc[1] += int(h)
    if cached is not None:
        base_sums = {f: [n, h] for f, n, h in zip(plain_base, base_rows, cached, strict=True)}
    fp_removed = combine((int(b), int(n), int(lo), int(hi)) for _f, removed, b, n, _h, lo, hi in split if removed)
    if deletes is not None:
        kept_sums = [(base_sums[f][0] - removed_sums[f][0], base_sums[f][1] - removed_sums[f][1])
                     for f in plain_base]
    else:
        plain_outs = [db.plain_path(o) for o in outs]
        per_out: dict[str, tuple[int, int]] = {}
        if outs:
            db.con.read_parquet(plain_outs, filename=True).create_view("src_files", replace=True)
            per_out = {str(f): (int(n), int(h)) for f, n, h in q("audit/hash_sum").rows(db.con)}
        kept_sums = [per_out.get(o, (0, 0)) for o in plain_outs]
    q("build/create_subset_check").run(db.con)
    for i, (f, (kept_rows, kept_hash)) in enumerate(zip(plain_base, kept_sums, strict=True)):
        q("build/insert_subset_check").run(
            db.con, shard=i, base_rows=base_sums[f][0], base_hash=base_sums[f][1], removed_rows=removed_sums[f][0],
            removed_hash=removed_sums[f][1], kept_rows=kept_rows, kept_hash=kept_hash)
    bad = q("audit/subset").rows(db.con)
    if bad:
        raise AuditError(f"audit subset failed: written shard {bad[0][0]} holds {bad[0][3]:,} rows that are not "
                         f"exactly the {bad[0][1]:,} rows of its base shard minus the {bad[0][2]:,} removed (a row "
                         "was added, lost, altered or written into another shard); nothing was published")
    fp_kept = subtract(base.fingerprint, fp_removed)
    row_hash = row_hash_stats([h for _, h in kept_sums])
    # 3. --full-audit: no surviving row matches any rule, re-run over the written shards (implied by 1, 2 and
    #    audit/matches_removed for rules that are functions of the row, so it is opt-in: it costs a matching pass)
    if not rerun_rules:
        return fp_kept, row_hash, shard_kept
    if deletes is not None:
        _bind_base(db, base_paths, base.roles, deletes)
    else:
        _bind_base(db, outs, base.roles)
    _run_rules(db, plans, spec, base.roles, [c.name for c in base.schema])
    q("build/matches_to_after").run(db.con)
    bad = q("audit/survivors_match").rows(db.con)
    if bad:
        raise AuditError(f"audit survivors_match failed: {len(bad)}+ kept row(s) still match rule "
                         f"{bad[0][2]!r}; nothing was published")
    return fp_kept, row_hash, shard_kept


def planned_shards(lake: Lake, spec: Spec) -> int | None:
    """How many shards ``build_version`` writes (its progress total): the base's; None when the base cannot be
    read (the build says why)."""
    try:
        return len(lake.load_version(spec.base).shards)
    except RelakeError:
        return None


def rules_from_flags(blocklists: Sequence[str], wheres: Sequence[str], category: str, sensitive: bool) -> list[Rule]:
    """One-off builds: ``--blocklist NAME`` and ``--where EXPR`` flags become rules of one category."""
    rules = [Rule(id=f"blocklist-{b.replace('@', '-r')}", category=category, sensitive=sensitive, blocklist=b)
             for b in blocklists]
    rules += [Rule(id=f"where-{i + 1}", category=category, sensitive=sensitive, where=w) for i, w in enumerate(wheres)]
    return rules
