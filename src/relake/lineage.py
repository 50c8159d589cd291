"""A version's lineage: the chain of derived versions between two of them, the original at its root, its
ancestry, and the view over the removals the chain recorded (``removed.parquet`` of each generation)."""

from __future__ import annotations

from collections.abc import Sequence

from duckdb import ColumnExpression, ConstantExpression

from relake.db import Db
from relake.errors import InputError, NotFoundError
from relake.identity import check_owned
from relake.lake import Lake
from relake.record import Version

DEFAULT_MIN_CROWD = 1000


def lineage(lake: Lake, ancestor: str, descendant: str) -> list[Version]:
    """The derived versions from ``descendant`` back to (excluding) ``ancestor``, newest first."""
    chain: list[Version] = []
    v = lake.load_version(descendant)
    lake.load_version(ancestor)
    seen: set[str] = set()
    while v.name != ancestor:
        if v.parent is None or v.name in seen:
            raise NotFoundError(f"{ancestor!r} is not an ancestor of {descendant!r}; a removal manifest goes from a "
                                "version to one built from it (`relake versions` shows the lineage)")
        seen.add(v.name)
        chain.append(v)
        v = lake.load_version(v.parent)
    if not chain:
        raise InputError(f"{ancestor!r} and {descendant!r} are the same version; nothing was removed")
    return chain


def bind_removed(db: Db, lake: Lake, chain: Sequence[Version]) -> None:
    """View ``removed_all``: every generation's ``removed.parquet`` (its recorded sha256 checked first) with a
    ``generation`` column naming the version that removed the row."""
    rels = []
    for v in chain:
        path = lake.version_dir(v.name) / "removed.parquet"
        if not path.is_file():
            raise NotFoundError(f"{path}: the version's provenance is missing; it cannot be manifested")
        check_owned(v, lake.version_dir(v.name))  # its recorded sha256: manifests come from verified provenance
        rel = db.con.read_parquet(db.plain_path(path))
        rels.append(rel.select(ConstantExpression(v.name).alias("generation"), *[ColumnExpression(c)
                                                                               for c in rel.columns]))
    union = rels[0]
    for r in rels[1:]:
        union = union.union(r)
    union.create_view("removed_all", replace=True)


def lineage_root(lake: Lake, name: str) -> str:
    """The original at the root of ``name``'s lineage (``name`` itself when it has no parent)."""
    v = lake.load_version(name)
    seen: set[str] = set()
    while v.parent is not None and v.name not in seen:
        seen.add(v.name)
        v = lake.load_version(v.parent)
    return v.name


def crowd_size(chain: Sequence[Version], override: int | None) -> int:
    """K, the crowd a sensitive removal needs: ``override``, else the largest ``min_crowd`` the chain's builds
    recorded (``DEFAULT_MIN_CROWD`` when none did)."""
    if override is not None:
        return override
    ks = [int(v.recipe.get("min_crowd", DEFAULT_MIN_CROWD)) for v in chain]
    return max(ks) if ks else DEFAULT_MIN_CROWD


def ancestry(lake: Lake, name: str) -> list[Version]:
    """``name``'s version and its ancestors, up to the original at the root (a cycle stops the walk)."""
    v = lake.load_version(name)
    chain = [v]
    seen = {v.name}
    while v.parent is not None and v.parent not in seen:
        v = lake.load_version(v.parent)
        seen.add(v.name)
        chain.append(v)
    return chain


__all__ = ["DEFAULT_MIN_CROWD", "ancestry", "bind_removed", "crowd_size", "lineage", "lineage_root"]
