"""img2dataset's ``output_format="parquet"``: the image bytes in the shard's parquet (column ``jpg``, whatever the
encoding); no side files, so a clean rewrites the parquet alone."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from relake.copies.layout import Layout, LayoutName, Written

__all__ = ["Parquet"]


class Parquet(Layout):
    name: ClassVar[LayoutName] = "parquet"
    summary = "image bytes in a jpg column"
    samples = "parquet rows"
    needs_keys = False
    image_column = "jpg"
    synth = True

    def filter(self, src: Path, dst: Path, drop: set[str]) -> Written:
        raise AssertionError("the parquet layout has no side files")
