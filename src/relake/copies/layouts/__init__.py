"""The registry of img2dataset output layouts: check, clean, synth-copy and the CLI's help all read ``LAYOUTS``.

Adding a layout is a module here (a ``relake.copies.layout.Layout``) and its line in ``LAYOUTS``. The order is
the order in which a copy folder's sides are looked for and layouts are listed in messages.
"""

from __future__ import annotations

from collections.abc import Sequence

from relake.copies.layout import Layout
from relake.copies.layouts.files import Files
from relake.copies.layouts.parquet import Parquet
from relake.copies.layouts.tfrecord import TFRecord
from relake.copies.layouts.webdataset import Webdataset

__all__ = ["LAYOUTS", "describe_layouts", "plain_layout", "side_layouts", "synth_layouts"]

LAYOUTS: dict[str, Layout] = {
    layout.name: layout
    for layout in (
        Webdataset(),
        Files(),
        TFRecord(),
        Parquet(),
    )
}


def side_layouts() -> list[Layout]:
    """The layouts that keep samples next to each parquet shard, in registry order."""
    return [layout for layout in LAYOUTS.values() if layout.side_name("0") is not None]


def plain_layout() -> Layout:
    """The layout of a copy whose shards have no side: the parquet files alone."""
    return next(layout for layout in LAYOUTS.values() if layout.side_name("0") is None)


def synth_layouts() -> list[Layout]:
    """The layouts synth-copy writes."""
    return [layout for layout in LAYOUTS.values() if layout.synth]


def describe_layouts(layouts: Sequence[Layout], *, summaries: bool = False) -> str:
    """"a, b or c" (with ``summaries``: "a (its summary), b (…) or c (…)") for messages and help."""
    names = [f"{x.name} ({x.summary})" if summaries else x.name for x in layouts]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]
