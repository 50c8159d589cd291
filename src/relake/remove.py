"""``relake rm``: remove a version nothing derives from and nothing published, as one rename.

The version folder is renamed into a locked staging folder (``staging/rm.<random>/``), the rename made durable, and
the staging folder then removed: a crash before the rename leaves the version whole, one after it leaves a dead
staging folder that ``relake gc`` (or the next run) removes. There is never a half-removed version under
``versions/``. An original's shards referenced in place (outside the lake) are never touched: only its folder goes.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from relake.crowd import PRIVATE_DIR, PUBLISHED_DIR
from relake.errors import InputError
from relake.lake import Lake, checkpoint, fsync_dir, locked_dir
from relake.report import Report

__all__ = ["Removed", "remove_version"]


@dataclass(frozen=True)
class Removed(Report):
    """What ``relake rm`` removed (or, with ``dry_run``, would remove): a version's folder, its files and bytes."""

    name: str
    folder: Path
    files: int
    bytes: int
    dry_run: bool = False


def remove_version(lake: Lake, name: str, *, dry_run: bool = False) -> Removed:
    """Remove version ``name``: refused (one line naming why) when a version of the lake derives from it or a
    publication of this lake (a release or a public manifest, ``LAKE/private/published/``) starts or ends at it."""
    lake.load_version(name)  # a clear error for a missing or damaged version
    listing = lake.list_versions()
    if listing.skipped:  # a version that cannot be read may derive from this one (or read its shards)
        other, why = listing.skipped[0]
        raise InputError(f"cannot remove {name}: version {other} cannot be read ({why}), so whether it derives "
                         f"from {name} is unknown; run `relake verify {other}` and mend or remove it first")
    children = sorted(v.name for v in listing.versions if v.parent == name)
    if children:
        raise InputError(f"cannot remove {name}: {', '.join(children)} derive{'s' if len(children) == 1 else ''} "
                         f"from it (remove {'it' if len(children) == 1 else 'them'} first)")
    published = _publications(lake, name)
    if published:
        raise InputError(f"cannot remove {name}: it was published ({published[0]}); a published version stays")
    folder = lake.version_dir(name)
    files = [p for p in folder.rglob("*") if p.is_file()]
    report = Removed(name, folder, len(files), sum(p.stat().st_size for p in files), dry_run)
    if dry_run:
        return report
    with locked_dir(lake.staging_dir, "rm") as staging:
        os.rename(folder, staging.path / name)
        fsync_dir(lake.versions_dir)
        checkpoint("rm:after-rename")
    return report


def _publications(lake: Lake, name: str) -> list[str]:
    """The logged publications that start or end at version ``name`` ("release laion..research to /x")."""
    folder = lake.root / PRIVATE_DIR / PUBLISHED_DIR
    out: list[str] = []
    for note in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            meta = json.loads(note.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:  # it may name this version: refuse rather than guess
            raise InputError(f"cannot remove {name}: the publication note {note} cannot be read ({exc}); whether "
                             f"{name} was published is unknown") from exc
        if isinstance(meta, dict) and name in (meta.get("from"), meta.get("to")):
            out.append(f"{meta.get('what')} {meta.get('from')}..{meta.get('to')} to {meta.get('out')}")
    return out
