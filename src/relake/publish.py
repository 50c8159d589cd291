"""Removal manifests (public and private), release folders, and lookups against a manifest.

A **public** manifest lists what was removed between two versions without listing anything harmful:
``removed.parquet`` holds one entry per removed row identity and a coarse public category, sorted by hash
(nothing positional: no shard, row, key, URL, caption or rule id), and ``manifest.json`` says how the hashes
were made. An entry identifies removed rows at the coarsest level that is still exact against the rows the
later version keeps (format ``relake.manifest/2``):

- ``match = 'url'``: every row of that canonical URL was removed; ``url_sha256`` only;
  (a format-1 manifest is read as if every entry were this)
- ``match = 'caption'``: some rows of the URL are kept, but every row with this (URL, caption) was removed;
  ``caption_sha256`` too (``canonical.caption_sha256``);
- ``match = 'key'``: rows with this (URL, caption) are both removed and kept; ``key_sha256`` too, which also
  covers the row's id (``canonical.key_sha256``, ids compared as ``canonical.key_text``).

Hashing alone does not hide a removal from someone holding the original, and a category
like "csam" would single rows out, so the **crowd rule** is enforced (``relake.crowd``): rows matched by a
``sensitive`` rule must share their public category with at least K hashes matched only by non-sensitive rules
that no public rule explains, in this manifest and in every set operation over it and the lake's earlier
publications, or nothing is written.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
from duckdb import ColumnExpression, ConstantExpression

from relake import __version__
from relake.canonical import CANONICAL_RULE, CANONICAL_VERSION, register_canonical
from relake.crowd import PublicationLog, private_dir
from relake.db import Db, connect, write_parquet_stable
from relake.engine import Engine, LocalEngine
from relake.errors import InputError, InvalidPathError, NotFoundError, duckdb_errors
from relake.identity import check_owned, check_record, check_sums
from relake.ingest import shard_facts
from relake.jsonfile import read_json
from relake.kinds import HASH_LENGTHS
from relake.lake import (
    PARTIAL_FILE,
    PUBLISH_LABEL,
    Lake,
    checkpoint,
    fsync_dir,
    fsync_tree,
    locked_dir,
    sweep_dead_publishes,
)
from relake.lineage import bind_removed, crowd_size, lineage, lineage_root
from relake.page import report_pair, write_report
from relake.record import Shard, Version, sha256_file
from relake.report import Report
from relake.sql import query
from relake.urlcache import ensure_url_caches
from relake.vectors import (
    SurvivingJob,
    read_positions,
    rows_at,
    surviving,
    surviving_label,
    write_surviving_hashed,
)

MANIFEST_FORMAT = "relake.manifest/2"
# Format 1 (its first spelling, and "relake.record/1", written by mistake after a rename): URL hashes only.
URL_ONLY_FORMATS = ("relake.manifest/1", "relake.record/1")
MATCH_LEVELS = ("url", "caption", "key")
REPORT_FILE = "report.html"  # a release's public report (relake.page)
_FETCH_MAX = 10_000  # kept rows sharing a removed row's URL-hash prefix read by position up to this many (_bind_kept)
IDENTIFIES = ("match='url': every row of the canonical URL (url_sha256); match='caption': the rows of the URL "
              "with one caption (caption_sha256 over url_sha256 and the caption, NULL distinct); match='key': "
              "one row among rows of one URL and caption (key_sha256 over caption_sha256 and the row id as "
              "key_text). A copy needs its URL column for url entries, its caption column for caption entries and "
              "the id column (key_column) for key entries; without them it matches more broadly")


@dataclass(frozen=True)
class ManifestSummary(Report):
    """What ``relake manifest`` reports: the folder written, its rows, hashes by public category."""

    out: Path
    rows: int
    counts: dict[str, int]
    private: bool
    image_hash: str | None
    ancestor: str = ""
    descendant: str = ""
    between: tuple[str, ...] = ()  # the versions strictly between, oldest first: copies of these it cleans too
    levels: dict[str, int] = field(default_factory=dict)  # removed rows listed by match level
    kept_matched: int = 0  # kept rows the key entries also match (the base's id does not tell them apart)


def _bind_kept(db: Db, lake: Lake, version: Version) -> None:
    """View ``kept_rows(url, caption, id)`` over the shards of ``version``: the rows a manifest must not match.
    When every shard has a URL cache (``urlcache``), only the rows whose canonical URL's hash prefix is a removed
    row's (view ``removed_all``): the others can share no URL with a removed row, and need no canonical form."""
    vdir = lake.version_dir(version.name)
    shards = [version.shard_path(vdir, s) for s in version.shards]
    varchar = duckdb.sqltypes.VARCHAR  # not duckdb.sqltype(), which opens the default connection (~20 ms)

    def role(col: str | None, alias: str) -> Any:
        expr = ColumnExpression(col) if col else ConstantExpression(None)
        return expr.cast(varchar).alias(alias)

    r = version.roles
    rel = db.con.read_parquet([db.plain_path(p) for p in shards])
    deletes = None
    if version.vector is not None:
        check_owned(version, vdir, version.vector.path)
        deletes = vdir / version.vector.path
    caches = None if r.url is None else ensure_url_caches(lake, db, version.shards, shards, r.url, write=False)
    if caches is None:
        rel = rel if deletes is None else surviving(db, rel, deletes)
    else:  # only the kept rows whose cached canonical-hash prefix is a removed row's: no other row's canonical
        # URL can equal a removed one, so no other row is canonicalised (or read past the cache)
        cache = db.con.read_parquet([db.plain_path(f) for f in caches.files])
        if deletes is not None:  # (the removed rows themselves are candidates too: dropped here)
            cache = surviving(db, cache, deletes)
        # a table of the few candidates (exact size known): what follows builds on it, not on the kept rows
        cache.select(ColumnExpression("file_index").alias("relake_ci"),
                     ColumnExpression("file_row_number").alias("relake_cp"), ColumnExpression("h32")).join(
            query("manifest/removed_prefixes").relation(db.con), "h32", how="semi").create("relake_kept_candidates")
        wanted = db.con.table("relake_kept_candidates")
        # (kept twins of removed URLs, and hash-prefix collisions)
        few = wanted.select(ColumnExpression("relake_ci"), ColumnExpression("relake_cp")).limit(
            _FETCH_MAX + 1).fetchall()
        if len(few) <= _FETCH_MAX:
            chosen: dict[int, list[int]] = {}
            for ci, cp in few:
                chosen.setdefault(int(ci), []).append(int(cp))
            rel = rows_at(db, shards, chosen) or rel.filter(
                ConstantExpression(False))  # read from the row groups holding them only
        else:
            rel = rel.join(wanted, (ColumnExpression("file_index") == ColumnExpression("relake_ci"))
                           & (ColumnExpression("file_row_number") == ColumnExpression("relake_cp")), how="semi")
    rel.select(role(r.url, "url"), role(r.caption, "caption"),
                                      role(r.id, "id")).create_view("kept_rows", replace=True)


def write_manifest(
    lake: Lake,
    ancestor: str,
    descendant: str,
    out: Path,
    *,
    private: bool = False,
    image_hashes: bool = False,
    min_crowd: int | None = None,
    enforce_crowd: bool = True,
    owner_only: bool = False,
    log: PublicationLog | None = None,
    release_data: bool = False,
) -> ManifestSummary:
    """Write the removal manifest from ``ancestor`` to ``descendant`` into the new folder ``out``: every row
    removed in any generation between them, each public entry at the coarsest exact level against the rows
    ``descendant`` keeps (see the module docstring).

    A public manifest is checked against the crowd rule together with every publication logged in the lake
    (``relake.crowd``) and logged before its final rename (into ``log`` when given: the caller publishes it and
    discards the log's entries on failure; ``release_data``: the manifest of a release, whose data reveals the
    rows removed since the lineage's original, which are logged and checked too). ``enforce_crowd=False`` (the
    lake's own pair cache) checks and logs nothing; ``owner_only`` makes the folder 0700 and its files 0600."""
    chain = lineage(lake, ancestor, descendant)
    first, last = lake.load_version(ancestor), chain[0]
    k = crowd_size(chain, min_crowd)
    levels: dict[str, int] = {}
    kept_matched = 0
    with connect(lake) as db:
        register_canonical(db.con)
        bind_removed(db, lake, chain)
        algos = {v.stats.get("removed_image_hash") for v in chain} - {None}
        image_algo = str(algos.pop()) if image_hashes and len(algos) == 1 else None
        if image_hashes and image_algo is None:
            raise InputError("--image-hashes: the removed rows carry no image hashes from the base data "
                             "(or several algorithms); build from a base with an md5/sha256 column or side table")
        own_log = log is None
        plog = PublicationLog(lake) if log is None else log
        public = not private and enforce_crowd
        if public:
            root = lineage_root(lake, last.name)
            if release_data and first.name != root:  # the release's data reveals every row removed since root
                since_root = lineage(lake, root, last.name)
                k = crowd_size(since_root, min_crowd)  # a longer chain: K at least the manifest's
                bind_removed(db, lake, since_root)
                plog.add(db, since_root, "release data", root, last.name, out)
                bind_removed(db, lake, chain)
            plog.add(db, chain, "release" if release_data else "manifest", first.name, last.name, out)
            plog.check(db, k)
        counts = {str(c): int(n) for c, n in query("manifest/category_counts").rows(db.con)}
        no_url = int(query("manifest/no_url_rows").rows(db.con)[0][0])
        owner_only = owner_only or private
        staging = _staging_sibling(out)
        try:
            if owner_only:
                os.chmod(staging, 0o700)
            if private:
                rows_q = query("manifest/private_rows")
                fname = "removed-private.parquet"
            else:
                _bind_kept(db, lake, last)
                query("manifest/create_entries").run(db.con)
                n_url, n_caption, n_key, kept_matched = (int(x) for x in query("manifest/entry_stats").rows(db.con)[0])
                levels = dict(zip(MATCH_LEVELS, (n_url, n_caption, n_key), strict=True))
                rows_q = query("manifest/public_rows")
                fname = "removed.parquet"
            if private:
                reader = db.con.sql(rows_q.text).to_arrow_reader()
            else:
                reader = _image_column_named(rows_q.relation(db.con, images=image_algo is not None).to_arrow_reader(),
                                             image_algo)
            write_parquet_stable(reader, staging / fname)  # streamed: any number of hashes
            written = pq.ParquetFile(staging / fname).metadata.num_rows
            if owner_only:
                os.chmod(staging / fname, 0o600)
            sidecar = {
                "format": MANIFEST_FORMAT,
                "kind": "private" if private else "public",
                "hash": "sha256",
                "hash_of": "canonical URL (UTF-8)",
                "identifies": None if private else IDENTIFIES,
                "entries": None if private else levels,
                "kept_rows_also_matched": None if private else kept_matched,
                "key_column": first.roles.id,
                "caption_column": first.roles.caption,
                "canonical_url_version": CANONICAL_VERSION,
                "canonical_url_rule": CANONICAL_RULE,
                "from": {"name": first.name, "fingerprint": first.fingerprint.value, "rows": first.rows},
                "to": {"name": last.name, "fingerprint": last.fingerprint.value, "rows": last.rows},
                "rows": written,
                "counts": counts,
                "removed_rows_without_url": no_url,
                "image_hash": image_algo,
                "min_crowd": k,
                "files": {fname: sha256_file(staging / fname)},
                "tool": {"relake": __version__, "duckdb": duckdb.__version__},
            }
            (staging / "manifest.json").write_text(json.dumps(sidecar, indent=2, sort_keys=True) + "\n",
                                                   encoding="utf-8")
            if owner_only:
                os.chmod(staging / "manifest.json", 0o600)
            if public:
                plog.write(db)  # logged before the rename: a crash between only makes later checks stricter
            _publish_sibling(staging, out)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            if own_log:
                plog.discard()
            raise
    between = tuple(v.name for v in reversed(chain[1:]))
    return ManifestSummary(out, written, counts, private, image_algo, first.name, last.name, between, levels,
                           kept_matched)


def _image_column_named(reader: pa.RecordBatchReader, algo: str | None) -> pa.RecordBatchReader:
    """manifest/public_rows' batches with column image_hash named image_<algo>, or dropped when ``algo`` is None."""
    names = [f"image_{algo}" if n == "image_hash" else n for n in reader.schema.names]
    keep = [i for i, n in enumerate(reader.schema.names) if algo is not None or n != "image_hash"]
    schema = pa.schema([reader.schema.field(i).with_name(names[i]) for i in keep])
    batches = (pa.RecordBatch.from_arrays([b.column(i) for i in keep], schema=schema) for b in reader)
    return pa.RecordBatchReader.from_batches(schema, batches)


def manifest_for_pair(lake: Lake, a: str, b: str) -> Path:
    """A removal manifest A → B for local use (``check``/``clean --manifest A..B``), cached in the lake's private
    area (``private/pairs/``, folders 0700, files 0600) by B's fingerprint and the canonical URL rule version. It
    never leaves the lake and is never logged as published, so the crowd rule (a publishing rule) is not
    applied: it may list what no public manifest may, and only check/clean read it; image hashes from the base
    data are included when the builds recorded them."""
    b_version = lake.load_version(b)
    # keyed by the URL rule and manifest format too: a cached manifest of another rule version would be refused,
    # one of an older format would match whole URLs only
    fmt = MANIFEST_FORMAT.rpartition("/")[2]
    name = f"{a}..{b}.{b_version.fingerprint.value[:16]}.url-v{CANONICAL_VERSION}.m{fmt}"
    chain = lineage(lake, a, b)
    target = private_dir(lake, "pairs") / name
    if (target / "manifest.json").is_file():
        return target
    algos = {v.stats.get("removed_image_hash") for v in chain} - {None}
    write_manifest(lake, a, b, target, image_hashes=len(algos) == 1, enforce_crowd=False, owner_only=True)
    return target


def _staging_sibling(out: Path) -> Path:
    if out.exists():
        raise InvalidPathError(f"{out}: already exists; give a new folder (nothing is ever overwritten)")
    parent = out.absolute().parent
    if not parent.is_dir():
        raise NotFoundError(f"{parent}: no such folder")
    staging = parent / f".{out.name}.partial-{secrets.token_hex(6)}"
    staging.mkdir()
    return staging


def _publish_sibling(staging: Path, out: Path) -> None:
    fsync_tree(staging)
    checkpoint("publish:before-rename")
    try:
        os.rename(staging, out)
    except OSError as exc:
        raise InvalidPathError(f"{out}: appeared while writing; nothing was overwritten") from exc
    fsync_dir(out.absolute().parent)
    checkpoint("publish:after-rename")


@dataclass(frozen=True)
class Published(Report):
    """What ``relake publish`` wrote: the release folder of version ``name``, with the manifest of every row removed
    since ``since`` (None: an original, no manifest)."""

    name: str
    out: Path
    since: str | None
    rows: int
    shards: int


def publish_report(lake: Lake, name: str, out: Path, *, min_crowd: int | None = None,
                   since: str | None = None, engine: Engine | None = None) -> Published:
    """:func:`publish_release` as a report."""
    path = publish_release(lake, name, out, min_crowd=min_crowd, since=since, engine=engine)
    v = lake.load_version(name)
    ancestor = since if since is not None else lineage_root(lake, name) if v.parent is not None else None
    return Published(name, path, ancestor, v.rows, len(v.shards))


def publish_release(lake: Lake, name: str, out: Path, *, min_crowd: int | None = None,
                    since: str | None = None, engine: Engine | None = None) -> Path:
    """A release folder: data shards, version.json, CHANGELOG.md, SHA256SUMS, the public manifest of every row
    removed since ``since`` (default: the lineage's root, the original most copies are of), so it cleans copies
    of ``since`` and of every version between, and the public report of the two (``report.html``). A vector
    version is materialised here (``engine`` writes its shards, default a local pool): shard *i* is the surviving
    rows of root shard *i*, in order, byte for byte what ``build --materialize`` writes."""
    v = lake.load_version(name)
    check_record(lake, name)  # its version.json is copied into the release, whose SHA256SUMS then covers it
    ancestor = since if since is not None else lineage_root(lake, name) if v.parent is not None else None
    if ancestor is not None:
        lineage(lake, ancestor, name)  # a clear error before anything is copied
    vdir = lake.version_dir(name)
    with _noted_sibling(lake, out) as staging:
        _write_release(lake, v, vdir, staging, out, ancestor, min_crowd, engine)
    return out


@contextmanager
def _noted_sibling(lake: Lake, out: Path) -> Iterator[Path]:
    """``_staging_sibling(out)``, noted in the lake's staging area under a lock held for as long as this process
    lives, so ``relake gc`` (and the next publish to ``out``) can remove it if the process is killed; a dead
    staging folder of ``out`` is removed first."""
    sweep_dead_publishes(lake.staging_dir, False, out)
    with locked_dir(lake.staging_dir, PUBLISH_LABEL) as note:
        staging = _staging_sibling(out)
        try:
            (note.path / PARTIAL_FILE).write_text(str(staging.absolute()), encoding="utf-8")
            fsync_tree(note.path)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)  # not noted yet, so gc could never find it
            raise
        yield staging


def _write_release(lake: Lake, v: Version, vdir: Path, staging: Path, out: Path, ancestor: str | None,
                   min_crowd: int | None, engine: Engine | None = None) -> None:
    name = v.name
    log = PublicationLog(lake, out=out)
    try:
        (staging / "data").mkdir()
        shards = _materialised(v, vdir, staging, engine) if v.vector is not None else _copied(v, vdir, staging)
        released = replace(v, shards=tuple(shards), storage="lake", sources=(), recipe=public_recipe(v.recipe),
                           stats=public_stats(v.stats), files=(), vector=None,  # removed.parquet stays in the lake
                           bytes=sum(s.bytes for s in shards))
        (staging / "version.json").write_text(released.to_json(), encoding="utf-8")
        manifest: ManifestSummary | None = None
        if ancestor is not None:
            manifest = write_manifest(lake, ancestor, name, staging / "manifest", min_crowd=min_crowd, log=log,
                                      release_data=True)
        (staging / "CHANGELOG.md").write_text(_changelog(lake, released, manifest), encoding="utf-8")
        if ancestor is not None:  # the public report: nothing the manifest and version.json do not disclose
            write_report(report_pair(lake, ancestor, name, public=True), staging / REPORT_FILE)
        _write_sums(staging, {s.path: s.sha256 for s in shards})  # each shard hashed as it was written
        _publish_sibling(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        log.discard()  # the release was not published: neither is its log entry
        raise


def _copied(v: Version, vdir: Path, staging: Path) -> list[Shard]:
    """A materialised version's shards, copied and checked against their recorded sha256."""
    shards = []
    for i, s in enumerate(v.shards):
        rel = f"data/part-{i:05d}.parquet"
        src = v.shard_path(vdir, s)
        if not src.is_file() or src.stat().st_size != s.bytes:
            raise InputError(f"{src}: shard is missing or changed size; run `relake verify {v.name}`")
        shutil.copyfile(src, staging / rel)
        if sha256_file(staging / rel) != s.sha256:
            raise InputError(f"{src}: sha256 differs from the manifest; run `relake verify {v.name}`")
        shards.append(replace(s, path=rel))
    return shards


def _materialised(v: Version, vdir: Path, staging: Path, engine: Engine | None) -> list[Shard]:
    """A vector version's shards written out: shard *i* = root shard *i* without the deletion vector's positions
    (``vectors.write_surviving``, as ``build --materialize`` writes them). The vector is checked against its
    record first; each job re-hashes its root shard (it is read whole) and the shard it wrote, so the root's
    check costs no second pass on the driver; the rows written are counted against the record."""
    assert v.vector is not None
    check_owned(v, vdir, v.vector.path)
    positions = read_positions(vdir / v.vector.path, len(v.shards))
    codec = str(v.recipe.get("output_compression", "zstd"))
    outs = [(staging / f"data/part-{i:05d}.parquet").absolute() for i in range(len(v.shards))]
    jobs: list[SurvivingJob] = [(str(v.shard_path(vdir, s).absolute()), o, s.rows, p, codec, None)
                                for s, o, p in zip(v.shards, outs, positions, strict=True)]
    digests = (engine or LocalEngine()).map(write_surviving_hashed, jobs, label=surviving_label)
    shards = []
    with connect(None) as db:
        for s, out, kept, (root_sha, out_sha) in zip(v.shards, outs, v.vector.kept, digests, strict=True):
            if root_sha != s.sha256:
                raise InputError(f"{v.shard_path(vdir, s)}: shard of {v.name} differs from its record (sha256); "
                                 f"run `relake verify {v.name}`")
            if not out.is_file():
                raise InputError(f"{out} was written by the engine but is not visible here; the release folder "
                                 "must be on a file system every worker shares")
            facts = shard_facts(db, out, with_hash=False)
            if facts.rows != kept:
                raise InputError(f"{out}: {facts.rows:,} rows written, the version's record keeps {kept:,}; run "
                                 f"`relake verify {v.name}`")
            shards.append(Shard(f"data/{out.name}", facts.rows, facts.bytes, out_sha, facts.schema))
    return shards


def public_recipe(recipe: dict[str, Any]) -> dict[str, Any]:
    """The build recipe as a release may show it: hashes and categories, no spec text, params, blocklist names,
    predicates or ids of sensitive rules (a predicate could hold a literal URL; a rule id or count could
    single out the sensitive removals). The spec's sha256 lets anyone holding the spec check it."""
    keep = ("spec_sha256", "base", "base_fingerprint", "min_crowd", "canonical_url_version", "queries",
            "output_compression")
    out: dict[str, Any] = {k: recipe[k] for k in keep if k in recipe}
    rules = []
    for r in recipe.get("rules", []):
        if r.get("sensitive"):
            rules.append({"category": r.get("category"), "sensitive": True})
        else:
            rec = {"id": r.get("id"), "category": r.get("category"), "sensitive": False}
            bl = r.get("blocklist")
            if isinstance(bl, dict):
                rec["blocklist"] = {"kind": bl.get("kind"), "sha256": bl.get("sha256")}
            rules.append(rec)
    if rules:
        out["rules"] = rules
    return out


def public_stats(stats: dict[str, Any]) -> dict[str, Any]:
    """Removal totals a release may show: overall and by category (the categories passed the crowd rule), never
    by rule."""
    return {k: stats[k] for k in ("removed_rows", "removed_by_category", "removed_by_public_category") if k in stats}


def _write_sums(folder: Path, known: dict[str, str]) -> None:
    """SHA256SUMS of every file of the release folder; ``known``: digests of files just written and hashed
    (the shards, by their path in the folder), not read again."""
    lines = []
    for p in sorted(p for p in folder.rglob("*") if p.is_file() and p.name != "SHA256SUMS"):
        rel = p.relative_to(folder).as_posix()
        lines.append(f"{known.get(rel) or sha256_file(p)}  {rel}\n")
    (folder / "SHA256SUMS").write_text("".join(lines), encoding="utf-8")


def _changelog(lake: Lake, v: Version, manifest: ManifestSummary | None) -> str:
    lines = [f"# {v.name}", ""]
    if v.parent:
        lines += [f"Derived from `{v.parent}` by relake {__version__}: {v.rows:,} rows in {len(v.shards)} shards "
                  f"(shard *i* holds the surviving rows of shard *i* of `{v.parent}`, in order).", ""]
    else:
        lines += [f"Original release: {v.rows:,} rows in {len(v.shards)} shards.", ""]
    lines += [f"Content fingerprint: `{v.fingerprint.value}` ({v.fingerprint.algorithm}).", ""]
    if manifest is not None:
        cleans = f"copies of `{manifest.ancestor}`"
        if manifest.between:
            cleans += " or of any version between it and this one (" + ", ".join(
                f"`{n}`" for n in manifest.between) + ")"
        lines += ["## Removed", "",
                  f"The manifest lists every row removed from `{manifest.ancestor}` to `{v.name}`"
                  + (f" (over {len(manifest.between) + 1} generations)" if manifest.between else "")
                  + f": it cleans {cleans}.", "",
                  "| public category | URL hashes |", "|---|---|"]
        lines += [f"| {c} | {n:,} |" for c, n in sorted(manifest.counts.items())]
        lines += ["", "Removed rows listed by their whole URL: {url:,}; by URL and caption (other rows of the URL "
                  "are kept): {caption:,}; by URL, caption and id: {key:,}.".format(
                      **{lv: manifest.levels.get(lv, 0) for lv in MATCH_LEVELS})]
        if manifest.kept_matched:
            lines += [f"{manifest.kept_matched:,} kept rows share URL, caption and id with a removed row; a copy "
                      "loses them too (the id does not tell them apart)."]
        removed = v.stats.get("removed_rows")
        lines += ["", f"Rows removed from `{v.parent}`: {removed:,}." if isinstance(removed, int) else "", ""]
        with connect(lake) as db:
            bind_removed(db, lake, lineage(lake, v.parent or "", v.name))
            by_shard = query("manifest/removed_by_shard").rows(db.con)
        lines += ["| shard | rows removed |", "|---|---|"] + [f"| {s} | {n:,} |" for s, n in by_shard] + [""]
        lines += ["The public manifest (`manifest/removed.parquet`) lists hashes and a coarse category only: per "
                  "removed row the sha256 of its canonical URL, and where other rows of that URL are kept, a hash "
                  "that also covers its caption (and, if needed, its id); see `manifest/manifest.json` for the "
                  "canonicalisation rule and what a copy needs to be cleaned exactly.", ""]
    lines += [
        "## Check and clean your copy", "",
        "```bash",
        "sha256sum -c SHA256SUMS              # or: relake verify .",
        "relake lookup URL --manifest manifest",
        "relake check YOUR_COPY --manifest manifest",
        "relake clean YOUR_COPY --manifest manifest --out CLEANED_COPY",
        "```", "",
    ]
    return "\n".join(lines)


@dataclass(frozen=True)
class Listed(Report):
    """One looked-up URL: its canonical hash, and the public category listing it (None: not listed)."""

    json_computed: ClassVar[tuple[str, ...]] = ("listed",)

    url: str
    url_sha256: str | None  # None: no URL (empty once trimmed)
    category: str | None
    some_rows_only: bool = False  # the manifest lists only some rows of this URL (no entry of it is match='url')

    @property
    def listed(self) -> bool:
        return self.category is not None


@dataclass(frozen=True)
class Lookup(Report):
    """What ``relake lookup`` reports: one entry per URL, in order (its JSON is their list)."""

    json_root = "urls"

    urls: list[Listed]

    @property
    def any_listed(self) -> bool:
        return any(u.listed for u in self.urls)


def lookup_urls(urls: Sequence[str], manifest_dir: Path) -> Lookup:
    """Each URL (canonicalised as the manifest's were) looked up in the public manifest in ``manifest_dir``."""
    manifest = load_manifest(manifest_dir)
    with connect(None) as db:
        register_canonical(db.con)
        bind_entries(db, manifest)
        return Lookup([Listed(str(u), None if h is None else str(h), None if c is None else str(c), bool(p))
                       for u, h, c, p in query("manifest/lookup").rows(db.con, urls=list(urls))])


@dataclass(frozen=True)
class Canon(Report):
    """One URL, canonicalised: its canonical form and that form's sha256 (None for both: no URL)."""

    url: str
    canonical: str | None
    url_sha256: str | None


@dataclass(frozen=True)
class Canonicalised(Report):
    """What ``relake canon`` reports: one entry per URL, in order (its JSON is their list)."""

    json_root = "urls"

    urls: list[Canon]


def canon_urls(urls: Sequence[str]) -> Canonicalised:
    """Each URL's canonical form and sha256, by the SQL macros every manifest and blocklist is made with."""
    with connect(None) as db:
        register_canonical(db.con)
        return Canonicalised([Canon(str(u), None if c is None else str(c), None if h is None else str(h))
                              for u, c, h in query("manifest/canon").rows(db.con, urls=list(urls))])


def url_lines(text: str) -> list[str]:
    """The URLs of a batch (a file, or stdin): one a line, line ends (``\n``, ``\r\n``) dropped, blank lines
    skipped."""
    return [line for line in text.splitlines() if line.strip()]


def read_url_file(path: Path) -> list[str]:
    """:func:`url_lines` of a UTF-8 file."""
    try:
        return url_lines(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise NotFoundError(f"{path}: no such file") from None
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a folder, not a file of URLs") from None


def bind_entries(db: Db, manifest: Manifest) -> None:
    """View ``manifest_rows`` (see ``entries_view``) over a manifest's removed.parquet."""
    entries_view(db.con.read_parquet(db.plain_path(manifest.removed)), manifest.image_column, "manifest_rows")


def entries_view(rel: duckdb.DuckDBPyRelation, image_column: str | None, view: str) -> None:
    """View ``view(match, url_sha256, caption_sha256, key_sha256, category, img)`` over a manifest's
    removed.parquet read as ``rel``; a format-1 manifest's entries are all match='url'."""
    varchar = duckdb.sqltypes.VARCHAR  # not duckdb.sqltype(), which opens the default connection (~20 ms)

    def col(name: str | None, alias: str, default: object = None) -> Any:
        expr = ColumnExpression(name) if name is not None and name in rel.columns else ConstantExpression(default)
        return expr.cast(varchar).alias(alias)

    rel.select(col("match", "match", "url"), col("url_sha256", "url_sha256"),
               col("caption_sha256", "caption_sha256"), col("key_sha256", "key_sha256"),
               col("category", "category"), col(image_column, "img")).create_view(view, replace=True)


@dataclass(frozen=True)
class Manifest:
    """A removal manifest folder, validated."""

    folder: Path
    removed: Path
    image_hash: str | None  # "md5" | "sha256" | "sha1" | None
    image_column: str | None  # e.g. "image_md5"
    rows: int
    counts: dict[str, int]
    min_crowd: int | None = None
    format: str = MANIFEST_FORMAT
    key_column: str | None = None  # the base's id column, which key entries cover

    @property
    def url_only(self) -> bool:
        """A format-1 manifest: every entry stands for all rows of its URL."""
        return self.format in URL_ONLY_FORMATS


def _check_canonical_version(meta_path: Path, found: object) -> None:
    """Refuse URL hashes taken under another canonical URL rule: they would match nothing, silently."""
    if str(found) == CANONICAL_VERSION:
        return
    head = (f"{meta_path}: URL hashes use canonical URL rule version {found!r}, this relake implements "
            f"version {CANONICAL_VERSION}; they would not match (URLs would be missed silently)")
    older = isinstance(found, (str, int)) and str(found).isdigit() and int(found) < int(CANONICAL_VERSION)
    if older:
        raise InputError(f"{head}. Make the manifest again with this relake (relake manifest / relake publish) "
                         f"or ask its publisher for one of version {CANONICAL_VERSION}")
    raise InputError(f"{head}; upgrade relake")


def load_manifest(folder: Path) -> Manifest:
    """Read and check ``manifest.json`` and ``removed.parquet``; a clear error for anything not understood."""
    meta_path, removed = folder / "manifest.json", folder / "removed.parquet"
    if not meta_path.is_file():
        raise NotFoundError(f"{folder}: no manifest.json; a manifest folder holds manifest.json and removed.parquet")
    if not removed.is_file():
        private = " (this is a private manifest; check copies against the public one)" if (
            folder / "removed-private.parquet").is_file() else ""
        raise NotFoundError(f"{folder}: no removed.parquet next to manifest.json{private}")
    meta = read_json(meta_path, "removal manifest")
    fmt = meta.get("format")
    if fmt != MANIFEST_FORMAT and fmt not in URL_ONLY_FORMATS:
        raise InputError(f"{meta_path}: format {fmt!r} is not one this relake understands ({MANIFEST_FORMAT}, "
                         f"or {' / '.join(URL_ONLY_FORMATS)}); upgrade relake or ask for a manifest in that format")
    if meta.get("hash") != "sha256":
        raise InputError(f"{meta_path}: URL hash {meta.get('hash')!r} is not supported (only sha256)")
    _check_canonical_version(meta_path, meta.get("canonical_url_version"))
    image_hash = meta.get("image_hash")
    if image_hash is not None and not (isinstance(image_hash, str) and image_hash in HASH_LENGTHS):
        raise InputError(f"{meta_path}: image_hash {image_hash!r} is not one of null, "
                         f"{', '.join(HASH_LENGTHS)}")
    files = meta.get("files")
    recorded = files.get("removed.parquet") if isinstance(files, dict) else None
    if not isinstance(recorded, str):
        raise InputError(f"{meta_path}: no sha256 of removed.parquet (\"files\"), so its entries cannot be "
                         "checked; the manifest is damaged or was altered, get it again")
    if sha256_file(removed) != recorded:
        raise InputError(f"{removed}: sha256 differs from the one in manifest.json; the manifest is damaged "
                         "or was altered, get it again")
    try:
        schema = pq.read_schema(removed)
        rows = pq.read_metadata(removed).num_rows
    except Exception as exc:  # pyarrow raises several types for a damaged file
        raise InputError(f"{removed}: not a readable parquet file ({exc})") from exc
    names = list(schema.names)
    if "url_sha256" not in names:
        raise InputError(f"{removed}: no url_sha256 column (columns: {', '.join(names)})")
    needed = [] if fmt in URL_ONLY_FORMATS else [n for n in ("match", "caption_sha256", "key_sha256")
                                                 if n not in names]
    if needed:
        raise InputError(f"{removed}: no {needed[0]} column, which format {fmt} needs (columns: {', '.join(names)})")
    image_cols = [n for n in names if n.startswith("image_") and n[6:] in HASH_LENGTHS]
    image_column = f"image_{image_hash}" if image_hash else None
    if image_column is not None and image_column not in names:
        raise InputError(f"{meta_path}: image_hash is {image_hash!r} but removed.parquet has no {image_column} column")
    if image_column is None and image_cols:
        raise InputError(f"{meta_path}: image_hash is null but removed.parquet has column {image_cols[0]}; "
                         "the two files disagree")
    declared = meta.get("rows")
    if declared is not None and declared != rows:
        raise InputError(f"{folder}: manifest.json says {declared} rows, removed.parquet has {rows}; "
                         "the folder is damaged or mixed up")
    counts = meta.get("counts") or {}
    if not isinstance(counts, dict) or not all(_is_count(v) for v in counts.values()):
        raise InputError(f"{meta_path}: \"counts\" must map each category to a whole number of hashes; the "
                         "manifest is damaged or was altered, get it again")
    min_crowd = meta.get("min_crowd")
    key_column = meta.get("key_column")
    manifest = Manifest(folder, removed, image_hash, image_column, rows, {str(k): int(v) for k, v in counts.items()},
                        min_crowd if isinstance(min_crowd, int) else None, str(fmt),
                        key_column if isinstance(key_column, str) else None)
    _check_entries(manifest)
    return manifest


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _check_entries(manifest: Manifest) -> None:
    """Refuse entries whose hashes are not 64 lower-case hex digits (an upper-case hash would never match: a
    listed URL would read as not listed), whose match level is unknown or lacks the hash it needs, or whose
    image hashes have the wrong form. Checked once, when the manifest is loaded, for every reader."""
    length = HASH_LENGTHS.get(manifest.image_hash or "", 0)
    with connect(None) as db:
        bind_entries(db, manifest)
        with duckdb_errors(f"{manifest.removed}: not a readable parquet file"):
            rows, bad_url, bad_row, bad_img = query("manifest/entry_problems").rows(db.con, image_len=length)[0]
    if bad_url:
        raise InputError(f"{manifest.removed}: {bad_url} of {rows} url_sha256 values are not 64 lower-case hex "
                         "digits; they would never match")
    if bad_row:
        raise InputError(f"{manifest.removed}: {bad_row} of {rows} entries have a match other than url, caption "
                         "or key, or lack the caption_sha256/key_sha256 (64 lower-case hex digits) it needs")
    if bad_img:
        raise InputError(f"{manifest.removed}: {bad_img} {manifest.image_column} values are not {length} "
                         "lower-case hex digits; they would never match")


__all__ = ["MANIFEST_FORMAT", "MATCH_LEVELS", "URL_ONLY_FORMATS", "Listed", "Lookup", "Manifest", "ManifestSummary",
           "bind_entries", "check_sums", "entries_view", "lineage_root", "load_manifest", "lookup_urls",
           "manifest_for_pair", "publish_release", "write_manifest"]
