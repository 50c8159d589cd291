"""Check a downstream copy: which of its rows a removal manifest lists (by canonical-URL hash and image hash),
a release does not keep (allowlist mode), or whose image is near a hash of an ``image-pdq`` blocklist
(``relake.copies.perceptual``). Reports shards, keys, positions and counts, never a URL or caption of
an affected row (they may be harmful links)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

import duckdb
import pyarrow as pa
from duckdb import ColumnExpression

from relake.blocklist import Blocklist, load_blocklist
from relake.canonical import register_canonical
from relake.copies.keys import normal_key
from relake.copies.manifest import bind_manifest, manifest_view
from relake.copies.open import CopyLayout, copy_rows, open_copy, parquet_rows
from relake.copies.perceptual import PdqCheck, check_images
from relake.copies.samples import find_orphans
from relake.db import Db, connect
from relake.engine import job_connection, plain_file
from relake.errors import BlocklistError, InputError, duckdb_errors
from relake.kinds import BLOCKLIST_KINDS
from relake.lake import Lake
from relake.pdq import DEFAULT_MAX_DISTANCE, DEFAULT_MIN_QUALITY, require_pdq
from relake.publish import Manifest, load_manifest
from relake.report import HIDDEN, Report, json_meta, rounded
from relake.sources import read_side, resolve_side
from relake.sql import query

if TYPE_CHECKING:
    from relake.engine import Engine

__all__ = ["AffectedRow", "CheckReport", "ShardCheck", "check_copy"]

_ORPHAN_KEYS_SHOWN = 5


@dataclass(frozen=True)
class AffectedRow(Report):
    """One affected row; reported by its key, position and how it matched, never by its URL or caption."""

    json_computed: ClassVar[tuple[str, ...]] = ("how", "failed")

    shard: int = field(metadata=HIDDEN)  # index into CopyLayout.shards
    pos: int  # row position in the shard's parquet file
    key: str | None
    status: str | None = field(metadata=HIDDEN)
    error: str | None = field(metadata=HIDDEN)  # kept for _stats.json; never reported (it can name the host)
    by_url: bool = field(metadata=HIDDEN)
    by_image: bool = field(metadata=HIDDEN)
    not_kept: bool = field(metadata=HIDDEN)
    # "url" / "caption": matched by URL alone / by URL and caption alone, for want of a column (see CheckReport)
    loose: str | None = field(default=None, metadata=HIDDEN)

    @property
    def how(self) -> str:
        parts = []
        if self.by_url and self.by_image:
            parts.append("both")
        elif self.by_url:
            parts.append("url")
        elif self.by_image:
            parts.append("image")
        if self.not_kept:
            parts.append("not-in-release")
        return "+".join(parts)

    @property
    def failed(self) -> bool:
        return self.status is not None and self.status != "success"


@dataclass
class ShardCheck(Report):
    shard: str
    rows: int
    affected: int = 0
    url: int = 0
    image: int = 0
    both: int = 0
    not_in_release: int = 0
    failed: int = 0
    keys: list[AffectedRow] = field(default_factory=list, repr=False)  # its affected rows, by position
    orphans: int = 0  # keys in the shard's side (tar members, sample files, records) without a parquet row
    orphan_keys: list[str] = field(default_factory=list)  # the first few, as the side spells them
    misplaced: list[str] = field(default_factory=list)  # orphans whose key is an affected row's: clean drops them


def _affected_shards(shards: list[ShardCheck]) -> list[ShardCheck]:
    """The shards --json lists: those with affected rows or orphans."""
    return [s for s in shards if s.affected or s.orphans]


@dataclass
class CheckReport(Report):
    """What ``relake check`` reports; its ``--json`` lists only the affected shards, with their affected keys."""

    json_computed: ClassVar[tuple[str, ...]] = (
        "rows", "affected", "by_url", "by_image", "by_both", "not_in_release", "failed_downloads", "by_url_alone",
        "by_url_caption_alone", "shards_affected")

    copy: str
    layout: str  # a registered Layout's name (relake.copies.layouts.LAYOUTS), e.g. "webdataset"
    manifest: str | None
    keep_only: str | None
    image_matching: str | None  # the algorithm compared, or None
    shards: list[ShardCheck] = field(metadata=json_meta(convert=_affected_shards))
    affected_rows: list[AffectedRow] = field(repr=False, metadata=HIDDEN)
    notes: list[str] = field(default_factory=list)
    columns: dict[str, str | None] = field(default_factory=dict)
    seconds: float = field(default=0.0, metadata=json_meta(convert=rounded))
    copy_layout: CopyLayout | None = field(default=None, repr=False, metadata=HIDDEN)
    orphans: int = 0  # keys of the shards' sides without a parquet row (ShardCheck.orphans), over all shards
    manifest_format: str | None = None
    blocklist: str | None = field(default=None, metadata=json_meta(omit_none=True))  # an image-pdq list's name
    pdq: PdqCheck | None = field(default=None, metadata=json_meta(omit_none=True))

    @property
    def by_url_alone(self) -> int:
        """Rows matched by URL alone: entries for some rows of a URL, and the copy has no caption column."""
        return loose_count(self.affected_rows, "url")

    @property
    def by_url_caption_alone(self) -> int:
        """Rows matched by URL and caption alone: entries for one row of several alike, and no id column."""
        return loose_count(self.affected_rows, "caption")

    @property
    def rows(self) -> int:
        return sum(s.rows for s in self.shards)

    @property
    def affected(self) -> int:
        return len(self.affected_rows)

    @property
    def by_url(self) -> int:
        return self.count("url")

    @property
    def by_image(self) -> int:
        return self.count("image")

    @property
    def by_both(self) -> int:
        return self.count("both")

    @property
    def not_in_release(self) -> int:
        return self.count("not_in_release")

    @property
    def failed_downloads(self) -> int:
        return self.count("failed")

    @property
    def shards_affected(self) -> int:
        return sum(1 for s in self.shards if s.affected)

    def count(self, what: str) -> int:
        return sum(getattr(s, what) for s in self.shards)


def _spill_lake(lake: Lake) -> Lake | None:
    """Spill into the lake only when one exists: a downstream user checking a copy may have no lake."""
    return lake if lake.root.is_dir() else None


def check_copy(
    lake: Lake,
    copy: Path,
    manifest_dir: Path | None,
    *,
    keep_only: str | None = None,
    url_col: str | None = None,
    image_col: str | None = None,
    memory_limit: str | None = None,
    engine: Engine | None = None,
    blocklist: str | None = None,
    max_distance: int = DEFAULT_MAX_DISTANCE,
    min_quality: int = DEFAULT_MIN_QUALITY,
    workers: int | None = None,
    pdq_cache: Path | None = None,
) -> CheckReport:
    """Which rows of the copy in folder ``copy`` are affected by the manifest in ``manifest_dir``, are missing
    from release ``keep_only`` (a version name, version folder or parquet files), and/or have an image within
    ``max_distance`` bits of a hash of the ``image-pdq`` blocklist ``blocklist`` (images whose PDQ quality is
    below ``min_quality`` are not matched, only counted).

    With ``engine``, the manifest and PDQ matching run as one job per copy shard on it (same queries, same
    report); the allowlist matching (``keep_only``: every copy row against the whole release) stays in this
    process. Without it, PDQ hashing runs in ``workers`` processes (default: one per CPU). ``pdq_cache``: a
    folder keeping each shard's PDQ result for a rerun (``relake.copies.perceptual``)."""
    if manifest_dir is None and keep_only is None and blocklist is None:
        raise InputError("nothing to check against: give a manifest, a release to keep or an image-pdq blocklist")
    pdq_list = _pdq_blocklist(lake, blocklist) if blocklist is not None else None
    start = time.perf_counter()
    manifest = load_manifest(manifest_dir) if manifest_dir is not None else None
    with connect(_spill_lake(lake), memory_limit=memory_limit) as db:
        register_canonical(db.con)
        layout = open_copy(db, copy, url_col=url_col, image_col=image_col,
                           prefer_image=manifest.image_hash if manifest else None,
                           id_col=manifest.key_column if manifest else None)
        file_index = {f: i for i, f in enumerate(layout.bound)}
        notes: list[str] = []
        query("copies/create_hits").run(db.con)
        use_image = False
        if manifest is not None:
            bind_manifest(db, manifest)
            use_image = manifest.image_hash is not None and manifest.image_hash == layout.image_algo
            if manifest.image_hash is None:
                notes.append("the manifest lists no image hashes: matched by URL only")
            elif layout.image is None:
                notes.append(f"the copy has no image hash column: matched by URL only (the manifest has "
                             f"{manifest.image_hash}; name the copy's column with --image-col)")
            elif layout.image_algo is None:
                notes.append(f"the copy's column {layout.image} holds no image hash: matched by URL only")
            elif not use_image:
                notes.append(f"the copy's image hashes ({layout.image}) and the manifest's ({manifest.image_hash}) "
                             "use different algorithms: matched by URL only")
            if manifest.url_only:
                notes.append(f"the manifest is of format {manifest.format}: each entry stands for every row of its "
                             "URL (rows of one URL with other captions are matched too); a relake.manifest/2 "
                             "manifest tells them apart")
            have = (layout.caption is not None, layout.row_id is not None)
            if engine is not None:
                _match_manifest_on(engine, db, layout, manifest, use_image, have, memory_limit)
            else:
                with duckdb_errors(f"{copy}: cannot match the copy"):
                    query("copies/match_manifest").run(db.con, use_image=use_image, have_caption=have[0],
                                                       have_key=have[1])
        if keep_only is not None:
            if layout.caption is None:
                raise InputError(f"{copy}: no caption column; --keep-only matches rows by URL and caption")
            unchecked = _bind_release(db, lake, keep_only)
            if unchecked is not None:
                notes.append(unchecked)
            with duckdb_errors(f"{copy}: cannot match the copy"):
                query("copies/match_release").run(db.con)
        pdq: PdqCheck | None = None
        if pdq_list is not None:
            pdq = _match_pdq(db, layout, pdq_list, max_distance, min_quality, engine, workers, pdq_cache)
        rows = query("copies/affected").rows(db.con)
    orphans = find_orphans(layout, engine)
    if orphans is None:
        notes.append(f"the {layout.layout} layout cannot list its samples: orphans not looked for")
    affected = [
        AffectedRow(file_index[str(f)], int(pos), key, status, error, bool(u), bool(i), bool(k), loose)
        for f, pos, key, status, error, u, i, k, loose in rows
    ]
    _note_loose(notes, affected, manifest)
    affected.sort(key=lambda r: (r.shard, r.pos))
    shards = [ShardCheck(s.name, parquet_rows(s.parquet)) for s in layout.shards]
    for r in affected:
        s = shards[r.shard]
        s.affected += 1
        s.keys.append(r)
        s.both += r.by_url and r.by_image
        s.url += r.by_url and not r.by_image
        s.image += r.by_image and not r.by_url
        s.not_in_release += r.not_kept
        s.failed += r.failed
    if orphans is not None:
        _count_orphans(shards, orphans, {normal_key(r.key) for r in affected if r.key is not None})
    columns = {"url": layout.url, "caption": layout.caption, "key": layout.key, "row_id": layout.row_id,
               "status": layout.status, "image": layout.image}
    return CheckReport(
        copy=str(copy), layout=layout.layout, manifest=str(manifest_dir) if manifest_dir is not None else None,
        keep_only=keep_only, shards=shards,
        image_matching=layout.image_algo if use_image else "pdq" if pdq is not None else None,
        affected_rows=affected, notes=notes, columns=columns, seconds=time.perf_counter() - start,
        copy_layout=layout, orphans=sum(s.orphans for s in shards),
        manifest_format=manifest.format if manifest else None, blocklist=blocklist, pdq=pdq,
    )


def _pdq_blocklist(lake: Lake, name: str) -> Blocklist:
    """The blocklist ``name``, which must be of a perceptual kind (image-pdq), with pdqhash and Pillow present."""
    bl = load_blocklist(lake, name)
    kind = BLOCKLIST_KINDS.get(bl.kind)
    if kind is None or not kind.perceptual:
        raise BlocklistError(f"--blocklist {name}: a {bl.kind} list; check and clean compare a copy's images with "
                             "image-pdq lists (for URL lists, build a release and check against its manifest)")
    require_pdq()
    return bl


def _match_pdq(db: Db, layout: CopyLayout, bl: Blocklist, max_distance: int, min_quality: int,
               engine: Engine | None, workers: int | None, cache: Path | None) -> PdqCheck:
    """The copy's images against the image-pdq list ``bl``; its matched rows go into the temp table hits."""
    summary, per_shard = check_images(layout, bl, max_distance=max_distance, min_quality=min_quality,
                                      engine=engine, workers=workers, cache=cache)
    files = [bound for bound, matches in zip(layout.bound, per_shard, strict=True) for _ in matches]
    positions = [m.pos for matches in per_shard for m in matches]
    hits = pa.table({"file": pa.array(files, pa.string()), "pos": pa.array(positions, pa.int64())})
    db.con.from_arrow(hits).create_view("pdq_hits", replace=True)
    query("copies/insert_pdq_hits").run(db.con)
    return summary


def _count_orphans(shards: list[ShardCheck], orphans: list[dict[str, str]], affected_keys: set[str]) -> None:
    """Each shard's orphans (``find_orphans``): their number, the first few keys, and those that are an affected
    row's key (of any shard: img2dataset's keys are unique in a download)."""
    for s, found in zip(shards, orphans, strict=True):
        s.orphans = len(found)
        s.orphan_keys = sorted(found.values())[:_ORPHAN_KEYS_SHOWN]
        s.misplaced = sorted(spelled for normal, spelled in found.items() if normal in affected_keys)


def loose_count(rows: list[AffectedRow], level: str) -> int:
    """How many affected rows were matched only at ``level`` ("url", "caption") for want of a column."""
    return sum(1 for r in rows if r.loose == level)


def _note_loose(notes: list[str], affected: list[AffectedRow], manifest: Manifest | None) -> None:
    """Say how many rows were matched more broadly than the manifest's entries, for want of a column."""
    by_url, by_caption = loose_count(affected, "url"), loose_count(affected, "caption")
    if by_url:
        notes.append(f"{by_url:,} rows matched by URL alone: the copy has no caption column to tell rows of one URL "
                     "apart; removed to be safe (the manifest lists only some rows of their URLs)")
    if by_caption:
        key = manifest.key_column if manifest is not None else None
        notes.append(f"{by_caption:,} rows matched by URL and caption alone: the copy has no id column "
                     f"({key or 'the base had none'}) to tell rows of one URL and caption apart; removed to be safe")


@dataclass(frozen=True)
class _CheckJob:
    """One copy shard matched against a manifest, as an engine job (absolute paths)."""

    parquet: str
    label: str
    names: tuple[str | None, ...]  # the copy's key, url, caption, row id, status, error and image hash columns
    removed: str  # the manifest's removed.parquet
    image_column: str | None  # the manifest's image hash column
    use_image: bool
    have: tuple[bool, bool]  # the copy has a caption column, a row id column
    memory_limit: str | None


def _check_shard_job(job: _CheckJob) -> pa.Table:
    """The rows of one shard that copies/match_manifest matches, in its own single-threaded DuckDB:
    ``copies/shard_hits`` (pos, key, status, error, by_url, by_image, not_kept, loose_url, loose_caption) as an
    Arrow table."""
    con = job_connection(job.memory_limit)
    try:
        register_canonical(con)
        with (plain_file(job.parquet) as shard, plain_file(job.removed) as removed,
              duckdb_errors(f"{job.label}: cannot match the copy")):
            copy_rows(con.read_parquet(shard, filename=True, file_row_number=True), job.names)
            manifest_view(con.read_parquet(removed), job.image_column)
            query("copies/create_hits").run(con)
            query("copies/match_manifest").run(con, use_image=job.use_image, have_caption=job.have[0],
                                               have_key=job.have[1])
            return con.sql(query("copies/shard_hits").text).to_arrow_table()  # no params; one Arrow copy
    finally:
        con.close()


def _match_manifest_on(
    engine: Engine, db: Db, layout: CopyLayout, manifest: Manifest, use_image: bool, have: tuple[bool, bool],
    memory_limit: str | None,
) -> None:
    """copies/match_manifest as one job per shard on ``engine``; their rows go into the temp table hits."""
    names = (layout.key, layout.url, layout.caption, layout.row_id, layout.status, layout.error, layout.image)
    jobs = [_CheckJob(str(s.parquet.absolute()), f"shard {s.name} of {layout.root}", names,
                      str(manifest.removed.absolute()), manifest.image_column, use_image, have, memory_limit)
            for s in layout.shards]
    parts = engine.map(_check_shard_job, jobs, label=lambda j: j.label)
    tables = [t.add_column(0, "file", pa.array([bound] * t.num_rows, pa.string()))
              for t, bound in zip(parts, layout.bound, strict=True)]
    hits = pa.concat_tables(tables)
    db.con.from_arrow(hits).create_view("shard_hits", replace=True)
    query("copies/insert_hits").run(db.con)


def _bind_release(db: Db, lake: Lake, spec: str) -> str | None:
    """View ``rel_rows(url, caption)`` over the release (a release folder checked against its SHA256SUMS first);
    returns a note when its shards are read without their bytes checked."""
    side = resolve_side(lake, db, spec)
    if side.roles.url is None or side.roles.caption is None:
        raise InputError(f"--keep-only {spec}: the release needs URL and caption columns "
                         f"(found url={side.roles.url}, caption={side.roles.caption})")
    varchar = duckdb.sqltypes.VARCHAR  # not duckdb.sqltype(), which opens the default connection (~20 ms)
    with duckdb_errors(f"--keep-only {spec}: not readable as parquet"):
        rel = read_side(db, side)
    rel.select(ColumnExpression(side.roles.url).cast(varchar).alias("url"),
               ColumnExpression(side.roles.caption).cast(varchar).alias("caption")).create_view("rel_rows",
                                                                                              replace=True)
    return side.unchecked_note
