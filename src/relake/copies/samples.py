"""A shard's samples by key: the keys of its parquet rows against the names in its side, compared as normal keys
(``relake.copies.keys``). What the side holds without a parquet row is an *orphan*: check reports orphans (an
image without its row cannot be judged), clean verifies with the same listing that its output holds no file of
an affected row.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow.parquet as pq

from relake.copies.keys import SampleKeys, index_rows, index_side
from relake.copies.layouts import LAYOUTS
from relake.copies.open import CopyLayout
from relake.engine import LocalEngine
from relake.errors import InputError

if TYPE_CHECKING:
    from relake.engine import Engine

__all__ = ["SideJob", "find_orphans", "leftover_names", "parquet_keys", "side_orphans"]

_SCAN_WORKERS = 2


@dataclass(frozen=True)
class SideJob:
    """One shard's side listed against its parquet keys, as an engine job (absolute paths)."""

    label: str  # "shard 00000 of COPY", for messages
    layout: str  # its name in LAYOUTS
    parquet: str
    side: str
    key_column: str


def parquet_keys(path: Path, column: str) -> list[str | None]:
    """The values of ``path``'s key column (its name in any case) as text, in row order; [] when the file lacks
    it (a union of shards may have it elsewhere)."""
    try:
        names = pq.read_schema(path).names
        found = next((n for n in names if n.lower() == column.lower()), None)
        values = pq.read_table(path, columns=[found]).column(0).to_pylist() if found is not None else []
    except Exception as exc:  # pyarrow raises several types for a damaged file
        raise InputError(f"{path}: not a readable parquet file ({exc})") from exc
    return [None if v is None else v.decode("utf-8", "surrogateescape") if isinstance(v, bytes) else str(v)
            for v in values]


def side_orphans(job: SideJob) -> dict[str, str] | None:
    """The orphans of one shard's side: normal key → the key as its member is spelled, for each key of the side
    that no parquet row of the shard has; None when the layout cannot list its side. Refused (``InputError``)
    when two spellings of the side, or of the parquet's keys, are one normal key."""
    names = LAYOUTS[job.layout].sample_names(Path(job.side))
    if names is None:
        return None
    side = index_side(job.label, names)
    rows = index_rows(job.label, parquet_keys(Path(job.parquet), job.key_column))
    return {normal: spelled for normal, spelled in side.items() if normal not in rows}


def find_orphans(layout: CopyLayout, engine: Engine | None = None) -> list[dict[str, str]] | None:
    """``side_orphans`` of each shard of the copy (in shard order; {} for a shard without a side: the parquet
    layout), one job per shard on ``engine`` (by default two threads here); None when the layout cannot list its
    side."""
    if layout.key is None or all(s.side is None for s in layout.shards):
        return [{} for _ in layout.shards]  # no side (a layout with one needs a key column: open_copy)
    jobs = [SideJob(f"shard {s.name} of {layout.root}", layout.layout, str(s.parquet.absolute()),
                    str(s.side.absolute()), layout.key) for s in layout.shards if s.side is not None]
    runner = engine if engine is not None else LocalEngine(_SCAN_WORKERS)
    found = iter(runner.map(side_orphans, jobs, label=lambda j: j.label))
    out: list[dict[str, str]] = []
    for s in layout.shards:
        orphans = next(found) if s.side is not None else {}
        if orphans is None:
            return None
        out.append(orphans)
    return out


def leftover_names(layout_name: str, side: Path, drop: Sequence[str]) -> list[str] | None:
    """The names in the (cleaned) side ``side`` whose key is among ``drop``; None when the layout cannot list
    its side."""
    names = LAYOUTS[layout_name].sample_names(side)
    if names is None:
        return None
    keys = SampleKeys(drop)
    return [n for n in names if n in keys]
