"""A copy folder as relake reads it: its layout, shards (parquet, side, stats, other side files) and other
files, and view ``copy_rows`` over its parquet files with each column's role."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pyarrow.parquet as pq
from duckdb import ColumnExpression, ConstantExpression

from relake.copies.layout import Layout
from relake.copies.layouts import LAYOUTS, describe_layouts, plain_layout, side_layouts
from relake.copies.resume import INCOMPLETE_NAME, RECORD_NAME, unfinished
from relake.copies.write import TMP_SUFFIX
from relake.db import Db, detect_roles
from relake.errors import InputError, NotFoundError, duckdb_errors
from relake.kinds import HASH_LENGTHS as IMAGE_HASH_LENGTHS
from relake.sql import query

__all__ = ["CopyLayout", "CopyShard", "copy_rows", "open_copy", "parquet_rows", "scan_copy"]


@dataclass(frozen=True)
class CopyShard:
    name: str  # the parquet file's stem, e.g. "00000"
    parquet: Path
    side: Path | None  # its samples' bytes as the layout keeps them: "<name>.tar", folder "<name>/" ...; or None
    stats: Path | None
    extras: tuple[Path, ...]  # other files named "<name>.*" (e.g. a DALI index)

    @property
    def files(self) -> tuple[Path, ...]:
        return tuple(p for p in (self.parquet, self.side, self.stats, *self.extras) if p is not None)


@dataclass(frozen=True)
class CopyLayout:
    root: Path
    layout: str  # its Layout's name (relake.copies.layouts.LAYOUTS), e.g. "webdataset"
    shards: tuple[CopyShard, ...]
    others: tuple[Path, ...]  # every other file, relative to root
    url: str
    caption: str | None
    key: str | None
    status: str | None
    error: str | None
    image: str | None  # the image hash column
    image_algo: str | None
    bound: tuple[str, ...] = ()  # each shard's parquet path as bound in view copy_rows (its ``file`` values)
    row_id: str | None = None  # the column holding the base's row id (a manifest's key_column), if the copy kept it

    @property
    def format(self) -> Layout:
        return LAYOUTS[self.layout]


def scan_copy(root: Path) -> tuple[Layout, tuple[CopyShard, ...], tuple[Path, ...]]:
    """The layout, shards and other files (relative to ``root``) of the copy folder ``root``."""
    if root.exists() and not root.is_dir():
        raise InputError(f"{root}: is a file; give the folder of the copy (img2dataset's output folder)")
    if not root.is_dir():
        raise NotFoundError(f"{root}: no such folder")
    top = sorted(p.name for p in root.iterdir())
    _refuse_unfinished(root, top)
    base = root.resolve()
    linked_folders = {t for n in top if (t := _link_target(root, base, Path(n))) is not None and t.is_dir()}
    parquets = [n for n in top if n.endswith(".parquet") and (root / n).is_file()]
    if not parquets:
        raise NotFoundError(f"{root}: holds no .parquet shards; is this an img2dataset output folder?")
    stems = {n[: -len(".parquet")] for n in parquets}
    sided = side_layouts()
    suffixes = tuple(x.suffix for x in sided if x.suffix is not None)
    orphans = [n for n in top if any(n.endswith(s) and n[: -len(s)] not in stems for s in suffixes)]
    if orphans:
        raise InputError(f"{root}: {orphans[0]} has no matching .parquet; relake matches rows through the "
                         "parquet files, restore it or remove it")
    names = set(top)
    claimed: set[str] = set(parquets)
    found: list[tuple[CopyShard, dict[str, Path]]] = []  # each shard, its sides by layout
    for n in parquets:
        stem = n[: -len(".parquet")]
        sides = {x.name: side for x in sided if (side := x.claim(root, stem, names)) is not None}
        side_names = {x.side_name(stem) for x in sided}
        stats = root / f"{stem}_stats.json" if f"{stem}_stats.json" in top else None
        extras = tuple(root / x for x in top if x.startswith(stem + ".") and x != n and x not in side_names
                       and not x.endswith(".parquet") and (root / x).is_file())
        claimed.update(p.name for x, p in sides.items() if not LAYOUTS[x].folder)
        claimed.update(p.name for p in (stats, *extras) if p is not None)
        found.append((CopyShard(stem, root / n, None, stats, extras), sides))
    have = [(x, [s for s, sides in found if x.name in sides]) for x in sided]
    have = [(x, with_side) for x, with_side in have if with_side]
    if len(have) > 1:
        (a, with_a), (b, with_b) = have[:2]
        raise InputError(f"{root}: shard {with_a[0].name} has {a.kind} and shard {with_b[0].name} {b.kind}; "
                         f"a copy has one layout ({describe_layouts(sided)}), check each separately")
    layout = have[0][0] if have else plain_layout()
    if have and len(have[0][1]) != len(found):
        missing = next(s for s, sides in found if layout.name not in sides)
        raise InputError(f"{root}: shard {missing.name} has no {layout.describe(missing.name)} while other shards "
                         "have one; the copy is incomplete")
    shards = tuple(CopyShard(s.name, s.parquet, sides.get(layout.name), s.stats, s.extras) for s, sides in found)
    folders = {s.side.name for s in shards if layout.folder and s.side is not None}
    others: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = Path(dirpath).relative_to(root)
        if rel_dir == Path("."):
            dirnames[:] = [d for d in dirnames if d not in folders]  # a shard's samples, not other files
        if linked_folders:  # the folders that linked sample folders point to: samples too, not other files
            dirnames[:] = [d for d in dirnames
                           if (Path(dirpath) / d).is_symlink() or (Path(dirpath) / d).resolve() not in linked_folders]
        dirnames.sort()
        for name in (*dirnames, *filenames):
            _link_target(root, base, rel_dir / name)
        linked = [d for d in dirnames if (Path(dirpath) / d).is_symlink()]
        if linked:
            raise InputError(f"{root}: {(rel_dir / linked[0]).as_posix()} is a symlink to a folder, which relake "
                             "does not follow (its files would be missing from a cleaned copy); replace it by "
                             "the folder or remove it")
        for f in sorted(filenames):
            rel = rel_dir / f
            if rel.parts == (f,) and (f in claimed or f in (RECORD_NAME, INCOMPLETE_NAME) or f.endswith(TMP_SUFFIX)):
                continue
            if len(rel.parts) > 1 and f.endswith((".parquet", *suffixes)):
                raise InputError(f"{root}: {rel} is a shard in a subfolder; check each folder of shards separately")
            others.append(rel)
    for s in shards:
        if layout.folder and s.side is not None:
            with os.scandir(s.side) as entries:
                for entry in entries:
                    if entry.is_symlink():
                        _link_target(root, base, Path(s.side.name) / entry.name)
    return layout, shards, tuple(others)


def _link_target(root: Path, base: Path, rel: Path) -> Path | None:
    """The resolved target of ``root / rel`` when it is a symlink to a path inside the copy (``base``, the copy's
    resolved folder), None when it is no symlink. A symlink out of the copy, or to nothing, is refused: check and
    clean read nothing outside the copy folder (the message names the link, never what it points to)."""
    path = root / rel
    if not path.is_symlink():
        return None
    target = path.resolve()
    if target != base and base not in target.parents:
        raise InputError(f"{root}: {rel.as_posix()} is a symlink to a path outside the copy; relake reads nothing "
                         "outside the copy folder: replace the link by the file or folder itself, or remove it")
    if not target.exists():
        raise InputError(f"{root}: {rel.as_posix()} is a symlink to nothing (a missing path); remove it or restore "
                         "what it links to")
    return target


def _refuse_unfinished(root: Path, top: list[str]) -> None:
    """A clean's output folder whose clean has not finished (``relake.copies.resume.unfinished``) is refused."""
    if RECORD_NAME not in top and INCOMPLETE_NAME not in top:
        return
    copy = unfinished(root)
    if copy is not None:
        raise InputError(f"{root}: this is an unfinished clean output (a clean into it was interrupted or failed): "
                         f"rerun relake clean {copy or 'COPY'} --out {root} with the same manifest to finish it")


def open_copy(
    db: Db, root: Path, *, url_col: str | None = None, image_col: str | None = None, prefer_image: str | None = None,
    id_col: str | None = None,
) -> CopyLayout:
    """Find a copy's shards and column roles, and bind view ``copy_rows(file, pos, key, url, caption, rid, status,
    error, img)`` over its parquet files (``file`` is the path in ``CopyLayout.bound``; ``rid`` is column
    ``id_col``, found case-insensitively, or NULL when the copy lacks it)."""
    layout, shards, others = scan_copy(root)
    paths = [db.plain_path(s.parquet) for s in shards]
    with duckdb_errors(f"{root}: shards not readable as parquet"):
        rel = db.con.read_parquet(paths, union_by_name=True, filename=True, file_row_number=True)
    columns = [c for c in rel.columns if c not in ("filename", "file_row_number")]
    roles = detect_roles(columns, url=url_col, where=str(root))
    if roles.url is None:
        raise InputError(f"{root}: no url column (columns: {', '.join(columns)}); name it with --url-col")
    by_lower: dict[str, str] = {}
    for c in columns:
        by_lower.setdefault(c.lower(), c)
    if image_col is not None:
        if image_col not in columns:
            raise InputError(f"{root}: column {image_col!r} given for the image hash does not exist "
                             f"(columns: {', '.join(columns)})")
        algo = image_col.lower() if image_col.lower() in IMAGE_HASH_LENGTHS else None
        image: str | None = image_col
    else:
        found = [a for a in IMAGE_HASH_LENGTHS if a in by_lower]
        algo = prefer_image if prefer_image in found else (found[0] if found else None)
        image = by_lower[algo] if algo else None
    key, status, error = by_lower.get("key"), by_lower.get("status"), by_lower.get("error_message")
    if layout.needs_keys and key is None:
        raise InputError(f"{root}: {layout.name} shards but no key column in the parquet files; "
                         f"{layout.samples} cannot be matched to rows")
    row_id = by_lower.get(id_col.lower()) if id_col is not None else None
    copy_rows(rel, (key, roles.url, roles.caption, row_id, status, error, image))
    if image_col is not None and algo is None:
        algo = _hash_algorithm(db, root, image_col)
    return CopyLayout(root, layout.name, shards, others, roles.url, roles.caption, key, status, error, image, algo,
                      tuple(paths), row_id)


def _hash_algorithm(db: Db, root: Path, column: str) -> str | None:
    """The algorithm of the image hashes in ``column`` (named with --image-col), from their hex length; None when
    the column holds no value at all (every download failed): the copy is then matched by URL only."""
    by_length = {n: a for a, n in IMAGE_HASH_LENGTHS.items()}
    with duckdb_errors(f"{root}: cannot read column {column!r}"):
        lengths = query("copies/image_hash_lengths").rows(db.con)
    if not lengths:
        return None
    if len(lengths) == 1 and lengths[0][2] and int(lengths[0][0]) in by_length:
        return by_length[int(lengths[0][0])]
    found = ", ".join(f"{int(n):,} of length {int(n_len)}{'' if hex_ else ' (not hex)'}"
                      for n_len, n, hex_ in lengths) or "no value"
    raise InputError(f"{root}: column {column!r} given for the image hash does not hold hex md5, sha1 or sha256 "
                     f"values ({found}); name the column of the images' hashes")


def copy_rows(rel: duckdb.DuckDBPyRelation, names: tuple[str | None, ...]) -> None:
    """View ``copy_rows(file, pos, key, url, caption, rid, status, error, img)`` over ``rel`` (read with filename
    and file_row_number); ``names`` are the source columns of key … img, None (or absent from ``rel``) for NULL."""
    varchar = duckdb.sqltypes.VARCHAR  # not duckdb.sqltype(), which opens the default connection (~20 ms)
    have = {c.lower(): c for c in rel.columns}  # case-insensitive, as a union_by_name read of every shard

    def col(name: str | None, alias: str) -> Any:
        found = have.get(name.lower()) if name is not None else None
        expr = ColumnExpression(found) if found is not None else ConstantExpression(None)
        return expr.cast(varchar).alias(alias)

    aliases = ("key", "url", "caption", "rid", "status", "error", "img")
    rel.select(
        ColumnExpression("filename").alias("file"), ColumnExpression("file_row_number").alias("pos"),
        *(col(n, a) for n, a in zip(names, aliases, strict=True)),
    ).create_view("copy_rows", replace=True)


def parquet_rows(path: Path) -> int:
    try:
        return int(pq.read_metadata(path).num_rows)
    except Exception as exc:  # pyarrow raises several types for a damaged file
        raise InputError(f"{path}: not a readable parquet file ({exc})") from exc
