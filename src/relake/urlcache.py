"""The URL cache: what never changes for a shard's URLs, computed once and reused by every build reading it.

For each row of a shard, under one canonical rule, the canonical URL, its sha256 and its host never change. A
build's URL, url-sha256 and domain rules would recompute them for every row (the regexes of ``canonical_url``,
a sha256, the host's dot-suffixes); instead the first build that needs them (or ``ensure_url_caches`` at any
time) writes, per shard, ``queries/cache/write_url_cache.sql``: position for position, ``h32`` (the first 32 bits
of the canonical URL's sha256) and ``host`` (dictionary-encoded), zstd, about 6% of a LAION-like shard's bytes.
The hash prefix only picks candidates (a URL rule confirms each on the row's own URL, so a collision never
removes a row); the host is exact. Rules then join the cache by (shard, position).

Layout: ``url-cache/<tag>/<key>/`` holding ``url.parquet`` and ``cache.json`` (what it was made from and its own
sha256), where ``tag`` is ``url-v<CANONICAL_VERSION>-<digest of the canonical macros and this query>`` and
``key`` the sha256 of (the shard's sha256, the URL column's name): a cache belongs to shard *content*, so every
version reading the same shard shares it. A changed canonical rule is another tag: the old caches are stale,
never read again, and ``relake gc`` removes them (and caches of shards no version has any more).

The cache is owner-only (``lake.make_private``): it names the host of every row of a shard, rows a build removes
included. Trust: ``cache.json`` must name the tag, the shard's sha256, the column and row count, and the parquet file's
sha256 is checked against it before each use; anything else (a flipped byte, a cut file) discards the cache,
which is then recomputed. A cache is written in a staging folder from a shard whose sha256 is checked while it
is read, fsynced, and made visible by one rename of its folder (``lake.publish_dir``): a killed writer leaves
only a staging folder, which ``relake gc`` removes.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
from duckdb import ColumnExpression

from relake import canonical
from relake.canonical import MACRO_QUERIES, register_canonical
from relake.db import Db
from relake.errors import InputError, RelakeError
from relake.jsonfile import JSON_ERRORS, read_json_text
from relake.lake import Lake, checkpoint, make_private, publish_dir
from relake.record import Shard, Version, sha256_file
from relake.sql import query

__all__ = ["CACHE_FILE", "RECORD_FILE", "UrlCaches", "bind_url_caches", "cache_tag", "collect_garbage",
           "ensure_url_caches", "shard_cache_dir", "sweep_caches", "url_cache_notes"]

CACHE_FILE = "url.parquet"
RECORD_FILE = "cache.json"
_FORMAT = 1
_WRITE = "cache/write_url_cache"


class _Exists(Exception):
    """Another writer published the same cache first."""


class _Damaged(Exception):
    """A cache folder that cannot be trusted; the message says why."""


@dataclass(frozen=True)
class UrlCaches:
    """The URL caches of a base's shards, in shard order, and what had to be done to have them."""

    files: tuple[Path, ...]
    built: int  # shards whose cache was computed now (missing, stale or damaged)
    discarded: tuple[str, ...]  # why a damaged cache was thrown away, one line each

    @property
    def status(self) -> str:
        if self.discarded:
            return "rebuilt"
        return "built" if self.built else "reused"


def cache_tag() -> str:
    """The current canonical rule's cache tag: its version and a digest of every query a cache depends on."""
    names = sorted({*MACRO_QUERIES, "build/url_host", _WRITE})
    digest = hashlib.sha256("\n".join(f"{n} {query(n).sha256}" for n in names).encode()).hexdigest()
    return f"url-v{canonical.CANONICAL_VERSION}-{digest[:12]}"


def cache_root(lake: Lake) -> Path:
    return lake.root / "url-cache"


def _key(shard_sha256: str, column: str) -> str:
    return hashlib.sha256(f"{shard_sha256}\0{column}".encode()).hexdigest()


def shard_cache_dir(lake: Lake, shard_sha256: str, column: str, tag: str | None = None) -> Path:
    """Where the URL cache of a shard with this sha256 and URL column lives (under the current tag by default)."""
    return cache_root(lake) / (tag or cache_tag()) / _key(shard_sha256, column)


def _load(folder: Path, shard: Shard, column: str, tag: str) -> Path | None:
    """The cache file of ``folder`` when it is present and checks out; None when there is none; _Damaged else."""
    record_path = folder / RECORD_FILE
    if not folder.exists():
        return None
    try:
        record = read_json_text(record_path)
    except (*JSON_ERRORS, OSError) as exc:
        raise _Damaged(f"{record_path}: unreadable ({exc})") from exc
    try:
        rec = json.loads(record)
    except ValueError as exc:
        raise _Damaged(f"{record_path}: not JSON ({exc})") from exc
    want = {"format": _FORMAT, "tag": tag, "shard_sha256": shard.sha256, "column": column, "rows": shard.rows,
            "file": CACHE_FILE}
    if not isinstance(rec, dict) or any(rec.get(k) != v for k, v in want.items()):
        raise _Damaged(f"{record_path}: does not describe this shard's cache")
    path = folder / CACHE_FILE
    try:
        size, digest = path.stat().st_size, sha256_file(path)
    except OSError as exc:
        raise _Damaged(f"{path}: unreadable ({exc.strerror})") from exc
    if size != rec.get("bytes") or digest != rec.get("sha256"):
        raise _Damaged(f"{path}: sha256 {digest[:16]}… differs from the recorded {str(rec.get('sha256'))[:16]}…")
    return path


def ensure_url_caches(lake: Lake, db: Db, shards: Sequence[Shard], paths: Sequence[Path], column: str, *,
                      write: bool = True, hashed: bool = False) -> UrlCaches | None:
    """The URL caches of ``shards`` (read from ``paths``), computing on ``db`` any that is missing, stale or damaged.
    With ``write=False`` (a dry run) nothing is written: None unless every shard has a sound cache already.
    A shard is hashed while its cache is computed (the cache must describe the recorded bytes) unless the caller
    has just hashed it (``hashed``: ingest)."""
    tag = cache_tag()
    files: list[Path] = []
    built = 0
    discarded: list[str] = []
    for shard, path in zip(shards, paths, strict=True):
        folder = shard_cache_dir(lake, shard.sha256, column, tag)
        try:
            found = _load(folder, shard, column, tag)
        except _Damaged as exc:
            if not write:
                return None
            discarded.append(str(exc))
            _discard(lake, folder)
            found = None
        if found is None:
            if not write:
                return None
            found = _compute(lake, db, shard, path, column, tag, folder, hashed)
            built += 1
        files.append(found)
    return UrlCaches(tuple(files), built, tuple(discarded))


def _discard(lake: Lake, folder: Path) -> None:
    """Move a damaged cache folder out of sight in one rename (into a staging folder that is then removed)."""
    with lake.staging("cache-discarded") as trash:
        try:
            os.rename(folder, trash.path / "old")
        except FileNotFoundError:
            pass  # another build discarded it first


def _compute(lake: Lake, db: Db, shard: Shard, path: Path, column: str, tag: str, folder: Path,
             hashed: bool) -> Path:
    register_canonical(db.con)
    query("build/url_host").run(db.con)
    with lake.staging("cache") as staging, ThreadPoolExecutor(max_workers=1) as pool:
        # beside the scan: the cache must describe the recorded bytes
        digest = pool.submit(lambda: shard.sha256 if hashed else sha256_file(path))
        out = staging.path / CACHE_FILE
        db.con.read_parquet(db.plain_path(path)).select(
            ColumnExpression(column).cast(duckdb.sqltypes.VARCHAR).alias("url")).create_view("shard_urls",
                                                                                            replace=True)
        query(_WRITE).run(db.con, out=str(out))
        if digest.result() != shard.sha256:
            raise InputError(f"{path}: shard changed since it was recorded (its sha256 differs from the "
                             "manifest's); run `relake verify` on its version; nothing was published")
        record: dict[str, Any] = {"format": _FORMAT, "tag": tag, "canonical_url_version": canonical.CANONICAL_VERSION,
                                  "shard_sha256": shard.sha256, "column": column, "rows": shard.rows,
                                  "file": CACHE_FILE, "bytes": out.stat().st_size, "sha256": sha256_file(out)}
        (staging.path / RECORD_FILE).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
        # owner-only, as the lake's other private parts: it names the host of every row, removed ones included
        make_private(staging.path / CACHE_FILE, staging.path / RECORD_FILE, staging.path)
        checkpoint("cache:before-publish")
        for d in (cache_root(lake), folder.parent):
            d.mkdir(exist_ok=True)
            make_private(d)
        try:
            publish_dir(staging, folder, _Exists)
        except _Exists:
            pass  # the same cache, published by another build meanwhile: checked below like any other
    found = _load(folder, shard, column, tag)
    if found is None:
        raise InputError(f"{folder}: the URL cache just written is gone; is another process removing it?")
    return found


def bind_url_caches(db: Db, caches: UrlCaches, base_files: Sequence[str]) -> None:
    """View url_cache(cache_file, pos, h32, host) over the caches and table cache_files(cache_file, file) mapping
    each to the base file (as view rows names it) it describes."""
    plain = [db.plain_path(f) for f in caches.files]
    db.con.read_parquet(plain, filename=True, file_row_number=True).select(
        ColumnExpression("filename").alias("cache_file"), ColumnExpression("file_row_number").alias("pos"),
        ColumnExpression("h32"), ColumnExpression("host"),
    ).create_view("url_cache", replace=True)
    query("cache/create_cache_files").run(db.con)
    for c, f in zip(plain, base_files, strict=True):
        query("cache/insert_cache_file").run(db.con, cache_file=c, file=f)


def url_cache_notes(lake: Lake, version: Version) -> list[str]:
    """``relake verify``: one line per damaged URL cache of the version's shards (a build would discard and
    recompute it, ``relake gc`` removes it); a missing cache is no news (the next build computes it)."""
    column = version.roles.url
    if column is None:
        return []
    tag = cache_tag()
    notes: list[str] = []
    for shard in version.shards:
        try:
            _load(shard_cache_dir(lake, shard.sha256, column, tag), shard, column, tag)
        except _Damaged as exc:
            notes.append(f"URL cache damaged, the next build recomputes it: {exc}")
    return notes


def collect_garbage(lake: Lake, dry_run: bool = False) -> list[Path]:
    """``relake gc``: the lake's leftovers of crashed runs (``Lake.gc``), then the URL caches no build will read
    (``sweep_caches``). Returns what was (or would be) removed."""
    return [*lake.gc(dry_run=dry_run), *sweep_caches(lake, dry_run)]


def sweep_caches(lake: Lake, dry_run: bool = False) -> list[Path]:
    """Remove URL caches no build will read: those of another canonical rule (another tag), those of shards no
    version of the lake has (by sha256 and URL column) and damaged ones. Returns what was (or would be) removed."""
    root = cache_root(lake)
    if not root.is_dir():
        return []
    tag = cache_tag()
    live: dict[str, tuple[Shard, str]] = {}
    readable = True
    for name in lake.version_names():
        try:
            v = lake.load_version(name)
        except RelakeError:  # a version that cannot be read may still have caches: keep this tag's
            readable = False
            break
        if v.roles.url is not None:
            live.update((_key(s.sha256, v.roles.url), (s, v.roles.url)) for s in v.shards)
    removed: list[Path] = []
    for tag_dir in sorted(root.iterdir()):
        if tag_dir.name != tag or not tag_dir.is_dir():
            removed.append(tag_dir)
        elif readable:
            removed.extend(p for p in sorted(tag_dir.iterdir())
                           if p.name not in live or _damaged(p, *live[p.name], tag))
    if not dry_run:
        for p in removed:
            with lake.staging("cache-swept") as trash:  # out of sight in one rename, then removed
                os.rename(p, trash.path / "old")
    return removed


def _damaged(folder: Path, shard: Shard, column: str, tag: str) -> bool:
    try:
        _load(folder, shard, column, tag)
    except _Damaged:
        return True
    return False
