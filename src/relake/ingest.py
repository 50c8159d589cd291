"""Register parquet files as an immutable original version.

Originals are referenced in place by default (absolute paths plus each file's size and sha256 in the record;
the lake notes each file's identity, mtime, ctime, inode and device, as it was hashed: ``identity``): a 1 TB
release must not need a second TB, ``verify`` detects any change to the referenced bytes, and a changed
identity stops every command that would trust the record. ``copy=True``
copies the shards into the version folder instead, for a lake that must not depend on outside files.
Remote sources (fsspec URIs, see ``remote``) are always copied: every later command reads the lake's files
locally with DuckDB.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypedDict, Unpack

import duckdb

from relake import __version__
from relake.db import Db, connect, detect_roles
from relake.diff.columns import Compared
from relake.diff.local import KEY_FACTS, key_facts
from relake.errors import InputError, NotFoundError, RelakeError, duckdb_errors
from relake.fingerprint import fingerprint_and_row_hashes
from relake.identity import FileIdentity, hash_with_identity, note_identities, note_record
from relake.lake import Lake, checkpoint, validate_name
from relake.record import Column, Shard, Version, sha256_file
from relake.remote import RemoteFile, download, is_uri, redact, resolve_remote
from relake.report import HIDDEN, Report, json_meta, rounded
from relake.sources import resolve_sources
from relake.sql import query
from relake.urlcache import ensure_url_caches


@dataclass(frozen=True)
class ShardFacts:
    path: Path
    rows: int
    bytes: int
    sha256: str
    schema: tuple[Column, ...]
    identity: FileIdentity | None = None  # when the sha256 was taken (unchanged while it was taken)


def resolve_inputs(sources: Sequence[str]) -> list[Path | RemoteFile]:
    """``resolve_sources``, plus fsspec URIs (file, folder or glob, resolved alike), in the order given."""
    out: list[Path | RemoteFile] = []
    seen: set[str] = set()
    for raw in sources:
        found: Sequence[Path | RemoteFile] = resolve_remote(raw) if is_uri(raw) else resolve_sources([raw])
        for f in found:
            key = f"{f.fs.protocol}\x00{f.path}" if isinstance(f, RemoteFile) else str(f.resolve())
            if key not in seen:
                seen.add(key)
                out.append(f)
    if not out:
        raise NotFoundError("no source files given")
    return out


@contextmanager
def _named_by_uri(uris: dict[str, str]) -> Iterator[None]:
    """Errors about a downloaded copy name the URI it came from, not its place in the staging folder."""
    try:
        yield
    except InputError as exc:
        message = str(exc)
        for local, uri in uris.items():
            message = message.replace(local, uri)
        if message == str(exc):
            raise
        raise InputError(message) from exc


def shard_facts(db: Db, path: Path, *, with_hash: bool = True) -> ShardFacts:
    """Size, sha256, footer row count and schema of one parquet file; a clear error if it is unreadable."""
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror})") from exc
    if size == 0:
        raise InputError(f"{path}: file is empty (0 bytes), not parquet; remove it or restore it")
    plain = db.plain_path(path)
    with duckdb_errors(f"{path}: not a readable parquet file"):
        rel = db.con.read_parquet(plain)
        schema = tuple(Column(n, str(t)) for n, t in zip(rel.columns, rel.dtypes, strict=True))
        rows = query("ingest/shard_rows").rows(db.con, files=[plain])
    digest = sha256_file(path) if with_hash else ""
    return ShardFacts(path, int(rows[0][1]) if rows else 0, size, digest, schema)


def check_schemas(facts: Sequence[ShardFacts]) -> tuple[Column, ...]:
    """All shards must have the first shard's schema exactly (names, case, order and types)."""
    expected = facts[0].schema
    for f in facts[1:]:
        if f.schema == expected:
            continue
        exp = {c.name: c.type for c in expected}
        act = {c.name: c.type for c in f.schema}
        for c in expected:
            if c.name not in act:
                recased = [a for a in act if a.lower() == c.name.lower()]
                found = f", found {recased[0]!r} (names differ in case)" if recased else ""
                raise InputError(
                    f"{f.path}: schema drift: column {c.name!r} ({c.type}) missing{found} "
                    f"(expected as in {facts[0].path})"
                )
            if act[c.name] != c.type:
                raise InputError(
                    f"{f.path}: schema drift: column {c.name!r} is {act[c.name]}, expected {c.type} "
                    f"(as in {facts[0].path})"
                )
        for c in f.schema:
            if c.name not in exp:
                raise InputError(f"{f.path}: schema drift: unexpected column {c.name!r} ({c.type})")
        raise InputError(f"{f.path}: schema drift: columns in another order than in {facts[0].path}")
    return expected


def gather_facts(
    db: Db, paths: Sequence[Path], progress: Callable[[int], None] | None = None, known: dict[Path, str] | None = None
) -> list[ShardFacts]:
    """Facts of every file; a sha256 in ``known`` (a file just streamed in with its digest) is not read again."""
    known = known or {}
    with ThreadPoolExecutor(max_workers=2) as pool:
        digests = pool.map(lambda p: hash_with_identity(p, known.get(p)), paths)
        facts: list[ShardFacts] = []
        for p, (digest, identity) in zip(paths, digests, strict=True):
            f = shard_facts(db, p, with_hash=False)
            facts.append(ShardFacts(f.path, f.rows, f.bytes, digest, f.schema, identity))
            if progress:
                progress(1)
    return facts


@dataclass(frozen=True)
class IngestReport(Report):
    """What ``relake ingest`` reports: the new version's size and fingerprint, and the time it took."""

    name: str
    rows: int
    shards: int
    bytes: int
    fingerprint: str
    seconds: float = field(metadata=json_meta(convert=rounded))
    version: Version = field(repr=False, metadata=HIDDEN)


class IngestOptions(TypedDict, total=False):
    """``ingest_version``'s keyword arguments, for ``ingest_report``."""

    url_col: str | None
    caption_col: str | None
    id_col: str | None
    copy: bool
    memory_limit: str | None
    progress: Callable[[int], None] | None


def ingest_report(lake: Lake, name: str, sources: Sequence[str], **options: Unpack[IngestOptions]) -> IngestReport:
    """``ingest_version`` (same arguments), timed and reported."""
    start = time.perf_counter()
    v = ingest_version(lake, name, sources, **options)
    return IngestReport(v.name, v.rows, len(v.shards), v.bytes, v.fingerprint.value, time.perf_counter() - start, v)


def planned_files(sources: Sequence[str]) -> int | None:
    """How many files ``ingest_version`` will read (its progress total); None for remote sources (listed only as
    they are fetched) or sources it will refuse (it says why)."""
    if any(is_uri(s) for s in sources):
        return None
    try:
        return len(resolve_inputs(sources))
    except RelakeError:
        return None


def ingest_version(
    lake: Lake,
    name: str,
    sources: Sequence[str],
    *,
    url_col: str | None = None,
    caption_col: str | None = None,
    id_col: str | None = None,
    copy: bool = False,
    memory_limit: str | None = None,
    progress: Callable[[int], None] | None = None,
) -> Version:
    validate_name(name)
    lake.require_absent(name)
    remote = [s for s in sources if is_uri(s)]
    if remote and not copy:
        raise InputError(f"{redact(remote[0])}: a remote source must be copied into the lake; add --copy")
    inputs = resolve_inputs(sources)
    with connect(lake, memory_limit=memory_limit) as db, lake.staging(name) as staging:
        data = staging.path / "data"
        if copy:
            data.mkdir()
        # remote files are downloaded first, as part-NNNNN at their place in the order; all else reads the copies
        fetched = {i: download(f, data / f"part-{i:05d}.parquet")
                   for i, f in enumerate(inputs) if isinstance(f, RemoteFile)}
        paths = [f if isinstance(f, Path) else data / f"part-{i:05d}.parquet" for i, f in enumerate(inputs)]
        labels = [f.uri if isinstance(f, RemoteFile) else str(f) for f in inputs]
        with _named_by_uri({str(p): label for p, label in zip(paths, labels, strict=True) if str(p) != label}):
            facts = gather_facts(db, paths, progress, known={paths[i]: d for i, d in fetched.items()})
            schema = check_schemas(facts)
            roles = detect_roles([c.name for c in schema], url=url_col, caption=caption_col, id=id_col,
                                 where=labels[0])
            checkpoint("ingest:after-hash")
            shards: list[Shard] = []
            identities: list[FileIdentity | None] = [f.identity for f in facts]
            if copy:
                for i, f in enumerate(facts):
                    rel = f"data/part-{i:05d}.parquet"
                    # a downloaded file is already the lake's copy, its sha256 taken while it streamed in
                    if i not in fetched:
                        shutil.copyfile(f.path, staging.path / rel)
                        digest, identities[i] = hash_with_identity(staging.path / rel)
                        if digest != f.sha256:
                            raise InputError(f"{labels[i]}: changed while it was being copied; try again")
                    shards.append(Shard(rel, f.rows, f.bytes, f.sha256, f.schema))
            else:
                shards = [Shard(str(f.path), f.rows, f.bytes, f.sha256, f.schema) for f in facts]
            # with --copy, the lake's own copies (whose sha256 was just checked) are what later builds read
            scanned = [staging.path / sh.path for sh in shards] if copy else paths
            with duckdb_errors("cannot read the sources"):
                fp, row_hash = fingerprint_and_row_hashes(db, scanned)
                # whether the id column is a key, so a diff of two versions over these rows need not scan for it
                keys = [] if roles.id is None else [key_facts(
                    db, db.con.read_parquet([db.plain_path(p) for p in scanned]),
                    [Compared(roles.id, roles.id, roles.id, as_text=False)])]
        total_rows = sum(f.rows for f in facts)
        if fp.rows != total_rows:
            raise InputError(f"row counts disagree: footers say {total_rows}, a scan found {fp.rows}")
        version = Version(
            name=name,
            kind="original",
            parent=None,
            roles=roles,
            schema=schema,
            rows=total_rows,
            bytes=sum(f.bytes for f in facts),
            shards=tuple(shards),
            fingerprint=fp,
            tool={"relake": __version__, "duckdb": duckdb.__version__},
            sources=tuple(labels),
            storage="lake" if copy else "reference",
            stats={**({"row_hash": row_hash} if row_hash is not None else {}), **({KEY_FACTS: keys} if keys else {})},
        )
        (staging.path / "version.json").write_text(version.to_json(), encoding="utf-8")
        checkpoint("ingest:before-publish")
        lake.publish(staging, name)
    # the identities the shards had when hashed (a renamed folder keeps its files'), by their final paths
    folder = lake.version_dir(name)
    note_record(lake, folder)
    note_identities(lake, [(version.shard_path(folder, sh), sh.sha256, i)
                           for sh, i in zip(shards, identities, strict=True) if i is not None])
    if roles.url is not None:  # what never changes for these URLs, computed once for every build from them
        with connect(lake, memory_limit=memory_limit) as db:
            ensure_url_caches(lake, db, version.shards, [version.shard_path(folder, sh) for sh in version.shards],
                              roles.url, hashed=True)
    return version
