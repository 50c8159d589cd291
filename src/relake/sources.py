"""What a target given by a user names: a version of the lake, or parquet files on disk.

The one rule (``is_path``), used by every command that takes either (diff, fingerprint, verify, build's side
tables, ``copies clean --keep-only``, ``synth-copy``): a target is a path when it contains ``/``, ends in
``.parquet`` or exists here as a file or folder; otherwise it is the name of a version. A bare name that is
both a version of the lake and a file or folder here is refused (``./name`` is the path). A path to a folder
holding ``version.json`` (a version or release folder) is read as that version: its shards, never the other
files beside them.

Below every feature module: it imports only the lake, the record, identity (file checks), the database layer and
errors.
"""

from __future__ import annotations

import glob
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import duckdb
from duckdb import ColumnExpression, ConstantExpression

from relake.crowd import PRIVATE_DIR
from relake.db import Db, detect_roles
from relake.errors import InputError, InvalidNameError, NotFoundError, duckdb_errors
from relake.identity import IDENTITIES, SUMS_FILE, check_owned, check_release, check_shard_bytes, check_unchanged
from relake.jsonfile import JSON_ERRORS, read_json_text
from relake.lake import VERSION_FILE, Lake, check_user_path, has_glob_chars
from relake.record import Column, Roles, Version
from relake.remote import redact_text
from relake.urlcache import cache_root
from relake.vectors import dropped_between, surviving


def resolve_sources(sources: Sequence[str]) -> list[Path]:
    """Files, folders (every ``*.parquet`` below, sorted) or globs (expanded here, never by DuckDB)."""
    out: list[Path] = []
    seen: set[Path] = set()
    for raw in sources:
        p = check_user_path(raw)
        if "://" in raw:
            raise InputError(f"{redact_text(raw)}: remote sources are read only by `relake ingest --copy`; "
                             "ingest them into the lake first")
        release = release_folder(p)
        if release is not None:  # its data shards, checked against SHA256SUMS first; never manifest/
            check_release(release)
            data = release / "data"
            found = sorted(f for f in data.rglob("*.parquet") if f.is_file() and not _hidden(f, data))
            if not found:
                raise NotFoundError(f"{raw}: release folder holds no data shards")
        elif p.is_dir():
            found = sorted(f for f in p.rglob("*.parquet") if f.is_file() and not _hidden(f, p))
            if not found:
                raise NotFoundError(f"{raw}: folder holds no .parquet files")
        elif p.is_file():
            found = [p]
        elif has_glob_chars(raw):
            found = sorted(Path(f) for f in glob.glob(raw, recursive=True) if Path(f).is_file())
            if not found:
                raise NotFoundError(f"{raw}: pattern matches no files")
        else:
            raise NotFoundError(f"{raw}: no such file or folder")
        for f in found:
            key = f.resolve()
            if key not in seen:
                seen.add(key)
                out.append(f.absolute())
    if not out:
        raise NotFoundError("no source files given")
    return out


def release_folder(p: Path) -> Path | None:
    """The release folder ``p`` names (``SHA256SUMS`` and ``version.json`` in it), as itself or as its ``data/``
    folder; None for anything else."""
    for folder in (p, p.parent) if p.name == "data" else (p,):
        try:
            if (folder / SUMS_FILE).is_file() and (folder / VERSION_FILE).is_file():
                return folder
        except (OSError, ValueError):
            return None
    return None


def _hidden(f: Path, root: Path) -> bool:
    return any(part.startswith((".", "_")) for part in f.relative_to(root).parts)


# ------------------------------------------------------------------------------ version name or path


def is_path_spec(spec: str) -> bool:
    """A target is a path when it contains '/', ends in .parquet or exists here; otherwise a version name."""
    return "/" in spec or spec.endswith(".parquet") or _exists(spec)


def is_path(lake: Lake, spec: str) -> bool:
    """``is_path_spec``, refusing a bare name that is both a version of the lake and a file or folder here."""
    if "/" not in spec and not spec.endswith(".parquet") and _exists(spec) and _has_version(lake, spec):
        raise InputError(f"{spec!r} is both a version of the lake and a file or folder here; "
                         f"write ./{spec} for the path")
    return is_path_spec(spec)


def _exists(spec: str) -> bool:
    try:
        return Path(spec).exists()
    except (OSError, ValueError):  # a name too long for a path, say: nothing here, maybe a (bad) version name
        return False


def _has_version(lake: Lake, spec: str) -> bool:
    try:
        return lake.has_version(spec)
    except InvalidNameError:  # an existing file whose name no version can have
        return False


def source_paths(lake: Lake, spec: str) -> list[Path]:
    """The parquet files a target names: a version's shards, or the files, folders or globs of a path. (A vector
    version's rows are not its shards' rows: use ``resolve_side`` and ``read_side`` for those.)"""
    if is_path(lake, spec):
        return resolve_sources([spec])
    version = lake.load_version(spec)
    if version.vector is not None:
        raise InputError(f"{spec}: version {version.name!r} is stored as a deletion vector over "
                         f"{version.vector.root!r}; give it where a version is read (or publish it to files)")
    folder = lake.version_dir(spec)
    return [version.shard_path(folder, s) for s in version.shards]


# ------------------------------------------------------------------------------------------- sides


SideKind = Literal["version", "files"]


@dataclass(frozen=True)
class Side:
    """A target read as rows: a lake version (``version`` and ``folder`` set) or a set of parquet files."""

    spec: str
    paths: tuple[Path, ...]
    columns: tuple[Column, ...]
    roles: Roles
    version: Version | None = None
    folder: Path | None = None
    # a version's shards are the files it recorded (size and identity; ``identity.check_unchanged``), so what
    # its record says about them (fingerprint buckets, row counts) may be used instead of reading them
    trusted: bool = False
    hashed: bool = False  # every byte was checked just now (a release's SHA256SUMS, or --verify)
    deletes: Path | None = None  # a vector version's deletion vector (checked against its record when resolved)

    @property
    def unchecked_note(self) -> str | None:
        """What a report says when it read this version's rows without its bytes ever being checked here: shards
        this lake never hashed (no identity noted: a version folder copied in, say) and not hashed now."""
        if self.version is None or self.trusted or self.hashed:
            return None
        return (f"shards of {self.spec} not re-hashed (this lake never hashed them): run `relake verify "
                f"{self.spec}` to check their bytes")

    @property
    def kind(self) -> SideKind:
        return "version" if self.version is not None else "files"

    def shard_reads(self) -> list[tuple[str, str | None, int]]:
        """What an engine job reading one file of this side needs: (file, deletion vector or None, shard index);
        ``vectors.shard_surviving`` gives the file's rows of the side."""
        deletes = None if self.deletes is None else str(self.deletes.absolute())
        return [(str(p.absolute()), deletes, i) for i, p in enumerate(self.paths)]

    def file_label(self, index: int) -> str:
        p = self.paths[index]
        if self.folder is not None:
            try:
                return str(p.relative_to(self.folder))
            except ValueError:
                return str(p)
        return str(p)


def resolve_side(lake: Lake, db: Db, spec: str, *, verify: bool = False) -> Side:
    """A version name, a version or release folder, or parquet files (their columns read by ``db``). A release
    folder is checked against its ``SHA256SUMS`` first; with ``verify`` a version's shards are re-hashed against
    its record before they are read."""
    if is_path(lake, spec):
        p = check_user_path(spec)
        if (p / VERSION_FILE).is_file():  # a version (or release) folder: its shards, never removed.parquet
            release = release_folder(p) == p
            if release:
                check_release(p)
            try:
                text = read_json_text(p / VERSION_FILE)
            except JSON_ERRORS as exc:
                raise InputError(f"{p / VERSION_FILE}: unreadable ({exc})") from exc
            return _version_side(lake, spec, Version.from_json(text, str(p / VERSION_FILE)), p, release, verify)
        paths = tuple(resolve_sources([spec]))
        _refuse_private(lake, paths)
        with duckdb_errors(f"{spec}: not readable as parquet"):
            rel = db.con.read_parquet([db.plain_path(x) for x in paths], union_by_name=True)
        columns = tuple(Column(n, str(t)) for n, t in zip(rel.columns, rel.dtypes, strict=True))
        return Side(spec, paths, columns, detect_roles([c.name for c in columns], where=spec))
    return _version_side(lake, spec, lake.load_version(spec), lake.version_dir(spec), False, verify)


def _refuse_private(lake: Lake, paths: Sequence[Path]) -> None:
    """The lake's private parts are never read as rows: a version's files beside its data (removed.parquet, the
    deletion vector), the URL caches, the blocklists, the private log and relake's own working folders; a
    version's own ``data/`` reads."""
    root = lake.root.resolve()
    parts_of = (lake.blocklists_dir, lake.staging_dir, lake.tmp_dir, lake.root / IDENTITIES, lake.root / PRIVATE_DIR,
                cache_root(lake))
    private_dirs = [d.resolve() for d in parts_of]
    for p in paths:
        rel = p.resolve()
        if not rel.is_relative_to(root):
            continue
        parts = rel.relative_to(root).parts
        in_version = rel.is_relative_to(lake.versions_dir.resolve())
        if any(rel.is_relative_to(d) for d in private_dirs) or (in_version and not (
                len(parts) >= 4 and parts[2] == "data")):
            raise InputError(f"{p}: a private part of the lake ({'/'.join(parts[:2])}), not a version's data; give "
                             "the version's name (or its folder) instead")


def _version_side(lake: Lake, spec: str, version: Version, folder: Path, hashed: bool, verify: bool) -> Side:
    paths = tuple(version.shard_path(folder, s) for s in version.shards)
    if not paths:
        raise InputError(f"{spec}: version {version.name!r} has no shards")
    trusted = check_unchanged(lake, version, folder, spec)  # the cheap check; `relake verify` re-hashes every byte
    if verify and not hashed:
        check_shard_bytes(version, folder, spec)  # identities are noted by `relake verify` alone (whole record)
        hashed = True
    deletes = None
    if version.vector is not None:  # small, and what the rows are: re-hashed on every read
        check_owned(version, folder, version.vector.path, spec=spec)
        deletes = folder / version.vector.path
    return Side(spec, paths, version.schema, version.roles, version, folder, trusted, hashed, deletes)


def read_side(db: Db, side: Side, *, ordered: bool = False) -> duckdb.DuckDBPyRelation:
    """The rows of a side as one relation (a parquet set's files unioned by column name; a vector version's root
    shards without the rows it drops). DuckDB's virtual columns (file_index, file_row_number) stay usable.
    ``ordered``: in file order, then row order, even for a vector version (whose filter may reorder rows)."""
    with duckdb_errors(f"{side.spec}: not readable as parquet"):
        rel = db.con.read_parquet([db.plain_path(p) for p in side.paths], union_by_name=side.version is None)
        if side.deletes is None:
            return rel
        kept = surviving(db, rel, side.deletes)
        return kept.order("file_index, file_row_number") if ordered else kept


def lineage_pair(db: Db, a: Side, b: Side) -> tuple[duckdb.DuckDBPyRelation, duckdb.DuckDBPyRelation] | None:
    """When one side is the other's ancestor over the same root shards (a version and a vector version built from
    it, through any generations), the rows only one side holds, read by position from the deletion vectors:
    (rows of A not in B, rows of B not in A), one of them empty; None for any other pair. Every other row is
    the same row on both sides (the same position of the same root file, its bytes checked as for any read)."""
    if a.version is None or b.version is None or a.folder is None or b.folder is None or not (a.trusted and b.trusted):
        return None  # (an unconfirmed record's row counts are not used: the rows are read instead)
    if a.paths != b.paths or [s.sha256 for s in a.version.shards] != [s.sha256 for s in b.version.shards]:
        return None

    def root(side: Side) -> str:
        assert side.version is not None
        return side.version.vector.root if side.version.vector is not None else side.version.name

    if root(a) != root(b) or (a.deletes is None and b.deletes is None):
        return None
    with duckdb_errors(f"{a.spec}, {b.spec}: not readable as parquet"):
        whole = db.con.read_parquet([db.plain_path(p) for p in a.paths])
        none = whole.filter(ConstantExpression(False))  # (a filter keeps the virtual file_index)
        if b.deletes is not None and _drops_within(db, a.deletes, b.deletes):
            return dropped_between(db, whole, b.deletes, a.deletes), none
        if a.deletes is not None and _drops_within(db, b.deletes, a.deletes):
            return none, dropped_between(db, whole, a.deletes, b.deletes)
    return None


def _drops_within(db: Db, fewer: Path | None, more: Path) -> bool:
    """Every row deletion vector ``fewer`` drops (None: none) is dropped by ``more`` too."""
    if fewer is None:
        return True
    small = db.con.read_parquet(db.plain_path(fewer))
    big = db.con.read_parquet(db.plain_path(more)).select(ColumnExpression("shard").alias("s2"),
                                                          ColumnExpression("position").alias("p2"))
    cond = (ColumnExpression("shard") == ColumnExpression("s2")) & (ColumnExpression("position")
                                                                    == ColumnExpression("p2"))
    return not small.join(big, cond, how="anti").limit(1).fetchall()
