"""Removal manifests as check reads them: a ``--manifest`` operand resolved to a folder, and bound as view
``man(match, url_sha256, caption_sha256, key_sha256, category, img)`` with its hashes' form checked."""

from __future__ import annotations

from pathlib import Path

import duckdb

from relake.db import Db
from relake.errors import InputError, NotFoundError
from relake.kinds import HASH_LENGTHS as IMAGE_HASH_LENGTHS
from relake.lake import Lake, check_user_path
from relake.publish import Manifest, entries_view, manifest_for_pair
from relake.sql import query

__all__ = ["bind_manifest", "manifest_view", "resolve_manifest"]


def resolve_manifest(lake: Lake, spec: str) -> Path:
    """A ``--manifest`` operand as a folder: a manifest folder as is, or a version pair ``A..B`` (a manifest
    made and cached in the lake by ``relake.publish.manifest_for_pair``)."""
    path = check_user_path(spec)
    if path.is_dir():
        return path
    if ".." in spec and "/" not in spec:
        a, _, b = spec.partition("..")
        return manifest_for_pair(lake, a, b)
    if path.exists():
        raise InputError(f"--manifest {spec}: not a folder; pass the manifest folder (removed.parquet + manifest.json)")
    raise NotFoundError(f"--manifest {spec}: no such folder")


def manifest_view(rel: duckdb.DuckDBPyRelation, image_column: str | None) -> None:
    """View ``man(match, url_sha256, caption_sha256, key_sha256, category, img)`` over a manifest's
    removed.parquet (read as ``rel``)."""
    entries_view(rel, image_column, "man")


def bind_manifest(db: Db, manifest: Manifest) -> None:
    manifest_view(db.con.read_parquet(db.plain_path(manifest.removed)), manifest.image_column)
    length = IMAGE_HASH_LENGTHS.get(manifest.image_hash or "", 0)
    rows, bad_url, bad_row, bad_img = query("copies/manifest_problems").rows(db.con, image_len=length)[0]
    if bad_url:
        raise InputError(f"{manifest.removed}: {bad_url} of {rows} url_sha256 values are not 64 lower-case hex "
                         "digits; they would never match")
    if bad_row:
        raise InputError(f"{manifest.removed}: {bad_row} of {rows} entries have a match other than url, caption "
                         "or key, or lack the caption_sha256/key_sha256 (64 lower-case hex digits) it needs")
    if bad_img:
        raise InputError(f"{manifest.removed}: {bad_img} {manifest.image_column} values are not {length} "
                         "lower-case hex digits; they would never match")
