"""Removal manifests as check reads them: a ``--manifest`` operand resolved to a folder, and bound as view
``man(match, url_sha256, caption_sha256, key_sha256, category, img)`` (its hashes' form is checked when it is
loaded, by ``relake.publish.load_manifest``)."""

from __future__ import annotations

from pathlib import Path

import duckdb

from relake.db import Db
from relake.errors import InputError, NotFoundError
from relake.lake import Lake, check_user_path
from relake.publish import Manifest, entries_view, manifest_for_pair

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
    """View ``man`` over a manifest whose hashes ``relake.publish.load_manifest`` checked."""
    manifest_view(db.con.read_parquet(db.plain_path(manifest.removed)), manifest.image_column)
