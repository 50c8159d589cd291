"""Is a file still the one its version recorded? Checked before anything recorded about it is trusted.

A version's record (``version.json``) holds facts about its files that commands use instead of reading them:
fingerprint buckets (``diff`` skips equal ones; ``fingerprint --from-manifest``), row counts and row-hash sums.
Originals are referenced in place, so their bytes can change under the lake; a same-size edit reads as other
values without any error. Two checks, both cheap, stand between a record and its use:

- **Shards: size and identity** (``check_unchanged``). When ingest, build or verify hash a file, the lake
  notes its identity then (mtime, ctime, inode and device, ``FileIdentity``) under ``LAKE/identities/``, one
  small entry per file path, tied to the sha256 it had. A shard that is missing, of another size, or of
  another identity than noted is refused with ``run `relake verify NAME```: any write changes the mtime and
  the ctime (the ctime even when the mtime is put back), a replaced file has another inode. ``verify``
  re-hashes every byte and, when a shard's sha256 still matches, notes its identity anew, which is accepted
  from then on (by every version with that file and sha256). So a touched file, or a lake copied elsewhere
  (new inodes), needs one ``verify``. The identities are the lake's, not the version's: ``version.json`` is
  never rewritten, stays byte-identical across rebuilds and lakes, and ships in releases. A shard with no
  identity noted (ingested by an older relake, a release folder never verified here, ``identities/``
  deleted) is *unconfirmed*: commands that read its rows go on (its size checked, as before), commands that
  would trust its record do not (``diff`` reads the rows instead of comparing buckets; ``fingerprint
  --from-manifest`` refuses until ``verify`` has confirmed the files).
- **Other files a version owns** (``removed.parquet``: the provenance every removal manifest and diff
  breakdown is made from; ``check_owned``): their size and sha256 are recorded in ``version.json`` at build
  and re-hashed before each read (they are small: the removed rows only). One with no recorded digest (built
  by an older relake) is not published from: rebuilding it with this relake gives the same shards byte for
  byte and a recorded digest. ``diff`` still reads it, saying its provenance is unchecked.

``build`` and ``publish`` need no identity check for shards: they re-hash every shard they use.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from relake.errors import InputError, NotFoundError
from relake.lake import VERSION_FILE, Lake
from relake.record import OwnedFile, Version, sha256_file

REMOVED_FILE = "removed.parquet"
SUMS_FILE = "SHA256SUMS"  # a release folder's list of the sha256 of every other file in it
IDENTITIES = "identities"  # LAKE/identities/: where the lake last saw each file it hashed


@dataclass(frozen=True)
class FileIdentity:
    """What ``stat`` says about a file, beyond its size: a file of the same size and identity as when it was
    hashed is taken to hold the same bytes. Any write changes the mtime and ctime (the ctime even when the
    mtime is put back), a replacement changes the inode."""

    mtime_ns: int
    ctime_ns: int
    inode: int
    device: int

    @staticmethod
    def of(st: os.stat_result) -> FileIdentity:
        return FileIdentity(st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev)

    def changes(self, other: FileIdentity) -> list[str]:
        """The fields that differ (``mtime``, ``ctime``, ``inode``, ``device``)."""
        return [n.removesuffix("_ns") for n in ("mtime_ns", "ctime_ns", "inode", "device")
                if getattr(self, n) != getattr(other, n)]



def file_identity(path: Path) -> tuple[int, FileIdentity]:
    """Size and identity of a file, as ``stat`` gives them now."""
    st = path.stat()
    return st.st_size, FileIdentity.of(st)


def hash_with_identity(path: Path, digest: str | None = None) -> tuple[str, FileIdentity]:
    """The sha256 of a file (``digest`` when already known) and its identity, the same before and after
    hashing (else the file changed meanwhile: refused)."""
    try:
        before = file_identity(path)
        digest = digest or sha256_file(path)
        after = file_identity(path)
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror})") from exc
    if before != after:
        raise InputError(f"{path}: changed while it was being read; try again when nothing writes to it")
    return digest, after[1]


# --------------------------------------------------------------------------------------------- shards


def _entry_path(lake: Lake, path: Path) -> Path:
    key = hashlib.sha256(str(path.resolve()).encode("utf-8", "surrogateescape")).hexdigest()[:32]
    return lake.root / IDENTITIES / f"{key}.json"


def noted_identity(lake: Lake | None, path: Path, sha256: str) -> FileIdentity | None:
    """The identity the lake last noted for this file while its bytes had this sha256."""
    if lake is None:
        return None
    try:
        v = json.loads(_entry_path(lake, path).read_text(encoding="utf-8"))
        if v["path"] != str(path.resolve()) or v["sha256"] != sha256:
            return None
        return FileIdentity(int(v["mtime_ns"]), int(v["ctime_ns"]), int(v["inode"]), int(v["device"]))
    except (OSError, ValueError, KeyError, TypeError):  # absent or damaged: nothing confirmed
        return None


def note_identities(lake: Lake | None, hashed: Sequence[tuple[Path, str, FileIdentity]]) -> None:
    """Note each file's identity while it had this sha256 (taken before hashing, equal after): one small entry
    per path under ``LAKE/identities/``, replaced atomically. Best effort: a lake that cannot be written to
    notes nothing, and commands then treat the files as unconfirmed."""
    if lake is None or not lake.root.is_dir():
        return
    for path, sha256, i in hashed:
        target = _entry_path(lake, path)
        entry = {"path": str(path.resolve()), "sha256": sha256, "mtime_ns": i.mtime_ns, "ctime_ns": i.ctime_ns,
                 "inode": i.inode, "device": i.device}
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(f".{target.name}.{os.getpid()}")
            tmp.write_text(json.dumps(entry) + "\n", encoding="utf-8")
            os.replace(tmp, target)
        except OSError:
            return


def check_unchanged(lake: Lake | None, version: Version, folder: Path, spec: str) -> bool:
    """Refuse a shard that is missing, changed size or changed identity since the lake last hashed it (at
    ingest, build or verify). Returns whether every shard's identity is confirmed (False: some shard has none
    noted, so only its size was checked, and its recorded facts should not be trusted without reading it)."""
    confirmed = True
    for shard in version.shards:
        path = version.shard_path(folder, shard)
        try:
            size, now = file_identity(path) if path.is_file() else (-1, None)
        except OSError:
            size, now = -1, None
        if now is None or size != shard.bytes:
            raise InputError(f"{path}: shard of {version.name} is missing or changed size; "
                             f"run `relake verify {spec}`")
        noted = noted_identity(lake, path, shard.sha256)
        if noted is None:
            confirmed = False
        elif noted != now:
            raise InputError(f"{path}: shard of {version.name} changed since it was recorded "
                             f"({', '.join(noted.changes(now))}); the bytes may differ: run `relake verify {spec}`")
    return confirmed


# ---------------------------------------------------------------------------------- version records


RecordState = Literal["same", "changed", "unnoted"]


def note_record(lake: Lake, vdir: Path) -> None:
    """Note the sha256 of a version's ``version.json`` (when the lake writes it, or when ``verify`` has checked
    every field it can against the data), as one more entry under ``identities/``: its other fields (parent,
    roles, stats, storage) say things no data can confirm, so a later edit of them is caught by this digest.
    Best effort, like ``note_identities``."""
    path = vdir / VERSION_FILE
    try:
        note_identities(lake, [(path, *hash_with_identity(path))])
    except InputError:
        return


def record_state(lake: Lake, vdir: Path) -> RecordState:
    """Whether a version's ``version.json`` is the one the lake noted: ``same``, ``changed`` or ``unnoted``
    (written by an older relake, a lake copied elsewhere, ``identities/`` deleted). Its bytes are hashed (a few
    KB), never trusted on a ``stat``."""
    path = vdir / VERSION_FILE
    try:
        v = json.loads(_entry_path(lake, path).read_text(encoding="utf-8"))
        if v["path"] != str(path.resolve()):
            return "unnoted"
        noted = str(v["sha256"])
    except (OSError, ValueError, KeyError, TypeError):
        return "unnoted"
    try:
        return "same" if sha256_file(path) == noted else "changed"
    except OSError:
        return "changed"


def check_record(lake: Lake, name: str) -> None:
    """Refuse a version whose ``version.json`` is not the one the lake noted (``publish`` copies it into a
    release, where it would then verify)."""
    vdir = lake.version_dir(name)
    state = record_state(lake, vdir)
    if state == "changed":
        raise InputError(f"{vdir / VERSION_FILE}: version record of {name} changed since it was written (sha256 "
                         f"differs from the one the lake noted); run `relake verify {name}`, then restore it or "
                         "re-create the version")
    if state == "unnoted":
        raise InputError(f"{vdir / VERSION_FILE}: no digest of the version record of {name} noted in this lake "
                         f"(an older relake, or a copied lake); run `relake verify {name}`, which notes it when "
                         "the record agrees with the data")


# --------------------------------------------------------------------------------- other owned files


def owned_record(folder: Path, name: str) -> OwnedFile:
    """The record of a file a version owns besides its shards, from its bytes (at build)."""
    path = folder / name
    return OwnedFile(name, path.stat().st_size, sha256_file(path))


def check_owned(version: Version, folder: Path, name: str = REMOVED_FILE, *, spec: str | None = None,
                require_record: bool = True) -> bool:
    """Check a file the version owns (``removed.parquet``) against its recorded size and sha256 before it is
    read. Returns False when no digest was recorded and ``require_record`` is off; refuses otherwise."""
    spec = spec or version.name
    path = folder / name
    if not path.is_file():
        raise NotFoundError(f"{path}: {name} of {version.name} is missing; run `relake verify {spec}`")
    record = next((f for f in version.files if f.path == name), None)
    if record is None:
        if not require_record:
            return False
        raise InputError(f"{path}: {name} of {version.name} has no recorded sha256 (built by an older relake), so "
                         f"the provenance cannot be checked and nothing is made from it; rebuild the version "
                         f"with this relake (`relake build NEW --spec SPEC`: the same shards, byte for byte, and "
                         f"a recorded digest) and use that")
    if path.stat().st_size != record.bytes or sha256_file(path) != record.sha256:
        raise InputError(f"{path}: {name} of {version.name} differs from its record (sha256); "
                         f"run `relake verify {spec}`")
    return True


def owned_problems(version: Version, folder: Path) -> tuple[list[str], list[str]]:
    """``verify``'s findings about the files a version owns besides its shards: (problems, notes)."""
    problems: list[str] = []
    for f in version.files:
        path = folder / f.path
        if Path(f.path).is_absolute() or ".." in Path(f.path).parts:
            problems.append(f"{path}: not a file inside the version folder")
        elif not path.is_file():
            problems.append(f"{path}: is missing")
        elif (size := path.stat().st_size) != f.bytes:
            problems.append(f"{path}: size {size} bytes, manifest says {f.bytes} (truncated or replaced)")
        elif (actual := sha256_file(path)) != f.sha256:
            problems.append(f"{path}: sha256 {actual[:16]}… differs from the manifest's {f.sha256[:16]}… "
                            "(bytes changed)")
    notes: list[str] = []
    if version.kind == "derived" and (folder / REMOVED_FILE).is_file() and not any(
            f.path == REMOVED_FILE for f in version.files):
        notes.append(f"{REMOVED_FILE} has no recorded sha256 (built by an older relake): its provenance cannot be "
                     "verified, and no manifest is published from it")
    return problems, notes


# ------------------------------------------------------------------------------------- release folders


def check_sums(folder: Path) -> list[str]:
    """Problems with ``SHA256SUMS`` in a release folder (empty when all files match)."""
    sums = folder / SUMS_FILE
    if not sums.is_file():
        return []
    problems = []
    listed: set[str] = set()
    for n, line in enumerate(sums.read_text(encoding="utf-8").splitlines(), 1):
        digest, sep, rel = line.partition("  ")
        path = folder / rel
        listed.add(rel)
        if not sep or ".." in Path(rel).parts or Path(rel).is_absolute():
            problems.append(f"{sums}:{n}: malformed line")
        elif not path.is_file():
            problems.append(f"{path}: listed in SHA256SUMS but missing")
        elif sha256_file(path) != digest:
            problems.append(f"{path}: sha256 differs from SHA256SUMS (bytes changed)")
    # every file of the folder is listed (as publish writes it), so nothing unchecked rides along: an empty or
    # shortened SHA256SUMS must not vouch for the files it leaves out
    present = sorted(q.relative_to(folder).as_posix() for q in folder.rglob("*")
                     if (q.is_file() or q.is_symlink()) and q != sums)
    problems += [f"{folder / rel}: not listed in SHA256SUMS (added, or the list was cut)"
                 for rel in present if rel not in listed]
    return problems


def check_release(folder: Path) -> None:
    """Refuse a release folder (``SHA256SUMS`` beside its files) any of whose files differs from its sum: a
    downloaded release is checked before it is used."""
    problems = check_sums(folder)
    if problems:
        more = f" (and {len(problems) - 1} more problems)" if len(problems) > 1 else ""
        raise InputError(f"{problems[0]}{more}; the release folder {folder} is damaged or was altered: get it "
                         f"again (`relake verify {folder}` lists every file)")


def check_shard_bytes(version: Version, folder: Path, spec: str) -> None:
    """Re-hash every shard of a version against its record (``--verify``: DuckDB does not check page checksums,
    so a flipped byte reads as other values); refuses the first that differs."""
    for shard in version.shards:
        path = version.shard_path(folder, shard)
        if hash_with_identity(path)[0] != shard.sha256:
            raise InputError(f"{path}: shard of {version.name} differs from its record (sha256); "
                             f"run `relake verify {spec}`")
