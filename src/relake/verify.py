"""Re-check a version against its manifest: every shard's size, sha256 and footer row count, then the
content fingerprint, and every other file it owns (``removed.parquet``): size and sha256. DuckDB does not
check parquet page checksums, so a flipped byte inside a data page would silently read as other values; the
sha256 re-hash is what catches it. A shard found intact has its identity (mtime, ctime, inode, device, as it
was hashed) noted anew in the lake's ``identities/``, so commands that refused it as touched or moved
(``identity.check_unchanged``) accept it again; ``version.json`` itself is never rewritten."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from relake.db import Db, connect
from relake.errors import InputError, NotFoundError, RelakeError, duckdb_errors
from relake.fingerprint import fingerprint_src, is_current
from relake.identity import (
    FileIdentity,
    check_sums,
    file_identity,
    note_identities,
    note_record,
    owned_problems,
    record_state,
)
from relake.ingest import shard_facts
from relake.jsonfile import JSON_ERRORS, read_json_text
from relake.lake import VERSION_FILE, Lake
from relake.record import Shard, Version, sha256_file
from relake.report import Report
from relake.sources import is_path
from relake.urlcache import url_cache_notes
from relake.vectors import surviving


@dataclass
class VerifyReport(Report):
    """One version's verification; ``ok`` when nothing differs."""

    json_computed: ClassVar[tuple[str, ...]] = ("ok",)

    target: str
    shards: int
    rows: int
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass
class Verification(Report):
    """What ``relake verify`` reports: one ``VerifyReport`` per version (its JSON is their list)."""

    json_root = "reports"

    reports: list[VerifyReport]

    @property
    def bad(self) -> list[VerifyReport]:
        return [r for r in self.reports if not r.ok]


def verify_target(lake: Lake, target: str | None, progress: Callable[[int], None] | None = None) -> Verification:
    """Verify one version (by name), a version/release folder (by path), or every version of the lake."""
    return Verification(_verify_reports(lake, target, progress))


def planned_shards(lake: Lake, target: str | None) -> int | None:
    """How many shards ``verify_target`` will hash (its progress total): a version's, or every version's; None
    for a folder or when a record cannot be read (the verify itself says why)."""
    try:
        if target is None:
            return sum(len(lake.load_version(n).shards) for n in lake.version_names())
        return None if is_path(lake, target) else len(lake.load_version(target).shards)
    except RelakeError:
        return None


def _verify_reports(lake: Lake, target: str | None, progress: Callable[[int], None] | None) -> list[VerifyReport]:
    if target is None:
        reports = []
        for n in lake.version_names():
            try:
                version = lake.load_version(n)
            except RelakeError as exc:  # a damaged manifest is this version's problem, not the others'
                reports.append(VerifyReport(n, 0, 0, [str(exc)]))
                continue
            reports.append(verify_version(lake, version, lake.version_dir(n), progress, record=True))
        return reports
    folder = Path(target)
    if is_path(lake, target):
        if not _has_manifest(folder):
            raise NotFoundError(f"{folder}: no {VERSION_FILE} here; give a version name or a release folder")
        try:
            text = read_json_text(folder / VERSION_FILE)
        except JSON_ERRORS as exc:
            raise InputError(f"{folder / VERSION_FILE}: unreadable ({exc})") from exc
        report = verify_version(None, Version.from_json(text, str(folder / VERSION_FILE)), folder, progress,
                                confirm_in=lake)
        report.problems.extend(check_sums(folder))
        return [report]
    return [verify_version(lake, lake.load_version(target), lake.version_dir(target), progress, record=True)]


def _has_manifest(folder: Path) -> bool:
    try:
        return (folder / VERSION_FILE).is_file()
    except (OSError, ValueError):  # a name too long for a path, say: not a folder, maybe a (bad) version name
        return False


def verify_version(
    lake: Lake | None, version: Version, folder: Path, progress: Callable[[int], None] | None = None,
    *, confirm_in: Lake | None = None, record: bool = False,
) -> VerifyReport:
    """``confirm_in``: the lake that notes the identities of intact shards (``identities/``; default ``lake``).
    ``record``: a version of ``lake``, whose ``version.json`` must be the one the lake noted when it wrote it
    (``identity.record_state``); when none was noted and everything checks out, it is noted now."""
    report = VerifyReport(version.name, len(version.shards), version.rows)
    report.problems.extend(record_problems(version, folder))
    good: list[Path] = []
    confirmed: list[tuple[Path, str, FileIdentity]] = []
    with connect(lake) as db:
        for shard in version.shards:
            path = version.shard_path(folder, shard)
            problem, identity = _check_shard(db, path, shard, folder, version)
            if problem:
                report.problems.append(problem)
            else:
                good.append(path)
                if identity is not None:
                    confirmed.append((path, shard.sha256, identity))
            if progress:
                progress(1)
        if version.vector is not None and report.ok:
            report.problems.extend(vector_problems(db, version, folder))
        if report.ok and good:
            if version.vector is not None:  # the version's rows: the root shards without the vector's positions
                surviving(db, db.con.read_parquet([db.plain_path(p) for p in good]),
                          folder / version.vector.path).create_view("src", replace=True)
            else:
                db.bind_parquet("src", good)
            try:
                with duckdb_errors(f"{folder}: cannot scan the shards"):
                    fp = fingerprint_src(db)
            except InputError as err:  # a problem of the version; out of memory or an interrupt still ends the run
                report.problems.append(str(err))
            else:
                if not is_current(version.fingerprint.algorithm):
                    report.notes.append(
                        f"fingerprint recorded with another algorithm ({version.fingerprint.algorithm.split(':')[0]});"
                        f" this relake computes {fp.algorithm.split(':')[0]}, so only sha256s and row counts were "
                        "compared")
                elif (fp.rows, fp.value) != (version.fingerprint.rows, version.fingerprint.value):
                    bad = sorted(k for k in set(fp.buckets) | set(version.fingerprint.buckets)
                                 if fp.buckets.get(k) != version.fingerprint.buckets.get(k))
                    report.problems.append(
                        f"{folder}: content fingerprint differs ({fp.value} != {version.fingerprint.value}; "
                        f"buckets {', '.join(bad[:8])})"
                    )
        elif report.ok and version.rows:
            report.problems.append(f"{folder}: manifest lists {version.rows} rows but no shards")
    owned, notes = owned_problems(version, folder)
    report.problems.extend(owned)
    report.notes.extend(notes)
    if version.storage == "lake":
        report.problems.extend(_unlisted_files(version, folder))
    if record and lake is not None:
        _check_record_digest(lake, version, folder, report)
        report.notes.extend(url_cache_notes(lake, version))
    if report.ok:  # a record found wrong in any way (a fingerprint, say) must not be trusted on a stat
        note_identities(confirm_in or lake, confirmed)
    return report


def record_problems(version: Version, folder: Path) -> list[str]:
    """What in ``version.json`` disagrees with itself: the total rows against the fingerprint's (which a scan
    checks), the total bytes against the shards' (each checked against its file), the roles against the schema,
    the storage against the shard paths. (Each shard's rows and schema are compared with its footer as it is
    read.)"""
    where = folder / VERSION_FILE
    problems = []
    if version.fingerprint.rows != version.rows:  # the fingerprint's rows are compared with a scan
        problems.append(f"{where}: rows says {version.rows}, the fingerprint {version.fingerprint.rows} "
                        "(the record was edited)")
    if version.bytes != sum(s.bytes for s in version.shards):
        problems.append(f"{where}: bytes says {version.bytes}, its shards {sum(s.bytes for s in version.shards)} "
                        "(the record was edited)")
    names = {c.name for c in version.schema}
    for role, col in (("url", version.roles.url), ("caption", version.roles.caption), ("id", version.roles.id)):
        if col is not None and col not in names:
            problems.append(f"{where}: roles names {col!r} as the {role} column, not a column of its schema")
    absolute = {Path(s.path).is_absolute() for s in version.shards}
    if version.storage != "vector" and absolute and absolute != {version.storage == "reference"}:
        problems.append(f"{where}: storage says {version.storage!r}, but its shard paths are "
                        f"{'absolute' if True in absolute else 'inside the version folder'} (the record was edited)")
    return problems


def vector_problems(db: Db, version: Version, folder: Path) -> list[str]:
    """What a vector version's deletion vector says against its record: per shard, positions inside the shard,
    each once, and as many as its shard's rows minus the rows the record keeps."""
    assert version.vector is not None
    path = folder / version.vector.path
    owned = next((f for f in version.files if f.path == version.vector.path), None)
    if owned is None:
        return [f"{path}: the deletion vector has no recorded sha256 in the version's files"]
    if not path.is_file() or path.stat().st_size != owned.bytes or sha256_file(path) != owned.sha256:
        return []  # owned_problems names it
    try:
        with duckdb_errors(f"{path}: not a readable deletion vector"):
            per = {int(s): (int(n), int(d), int(lo), int(hi)) for s, n, d, lo, hi in db.con.read_parquet(
                db.plain_path(path)).aggregate("shard, count(*), count(DISTINCT position), min(position), "
                                               "max(position)", "shard").fetchall()}
    except InputError as exc:
        return [str(exc)]
    problems = []
    if sum(n for n, _d, _lo, _hi in per.values()) != version.vector.dropped:
        problems.append(f"{path}: lists {sum(n for n, *_ in per.values()):,} rows, the record says "
                        f"{version.vector.dropped:,} (the record was edited)")
    for i, (shard, kept) in enumerate(zip(version.shards, version.vector.kept, strict=True)):
        n, distinct, lo, hi = per.pop(i, (0, 0, 0, 0))
        if distinct != n or lo < 0 or (n and hi >= shard.rows):
            problems.append(f"{path}: positions of shard {i} repeat or lie outside its {shard.rows:,} rows")
        elif shard.rows - n != kept:
            problems.append(f"{path}: shard {i} keeps {shard.rows - n:,} rows, the record says {kept:,}")
    if per:
        problems.append(f"{path}: lists rows of shard {min(per)}, which the version does not have")
    return problems


def _check_record_digest(lake: Lake, version: Version, folder: Path, report: VerifyReport) -> None:
    where = folder / VERSION_FILE
    state = record_state(lake, folder)
    if state == "changed":
        changed = f"{where}: changed since the lake wrote it (sha256 differs from the one noted then)"
        if report.ok:
            report.problems.append(f"{changed}; fields no data can confirm (parent, roles, stats, storage, recipe) "
                                   "were edited: restore it from a backup or re-create the version")
        else:  # the problems found already name what disagrees with the data
            report.notes.append(changed)
    elif state == "unnoted" and report.ok:  # an older relake or a copied lake: it agrees with the data, noted now
        note_record(lake, folder)


def _unlisted_files(version: Version, folder: Path) -> list[str]:
    """Files in the version's data folder that its manifest does not list: any tool reading ``data/*.parquet``
    would see rows that are not the version's."""
    data = folder / "data"
    if not data.is_dir():
        return []
    listed = {version.shard_path(folder, s) for s in version.shards}
    return [f"{p}: not a shard of the manifest (an extra file in the version's data folder)"
            for p in sorted(data.rglob("*")) if p not in listed and (p.is_symlink() or not p.is_dir())]


def _check_shard(db: Db, path: Path, shard: Shard, folder: Path, version: Version
                 ) -> tuple[str | None, FileIdentity | None]:
    """A problem with one shard, or None and its identity while it was hashed (None if it changed meanwhile)."""
    if version.storage == "lake":
        if path.is_symlink():
            return f"{path}: is a symlink; shards of a lake version must be plain files inside it", None
        try:
            path.resolve().relative_to(folder.resolve())
        except ValueError:
            return f"{path}: lies outside the version folder", None
    if not path.exists():
        return f"{path}: shard is missing", None
    actual_size, before = file_identity(path)
    if actual_size != shard.bytes:
        return f"{path}: size {actual_size} bytes, manifest says {shard.bytes} (truncated or replaced)", None
    actual = sha256_file(path)
    if actual != shard.sha256:
        return f"{path}: sha256 {actual[:16]}… differs from the manifest's {shard.sha256[:16]}… (bytes changed)", None
    try:
        facts = shard_facts(db, path, with_hash=False)
    except InputError as exc:
        return str(exc), None
    if facts.rows != shard.rows:
        return f"{path}: footer says {facts.rows} rows, manifest says {shard.rows}", None
    for what, recorded in (("the shard's schema", shard.schema), ("schema", version.schema)):
        if recorded and recorded != facts.schema:
            differ = [c.name for c in recorded if c not in facts.schema] or [c.name for c in facts.schema]
            return (f"{folder / VERSION_FILE}: {what} disagrees with {path}'s footer (column "
                    f"{differ[0]!r}; the record was edited)"), None
    return None, before if file_identity(path) == (actual_size, before) else None
