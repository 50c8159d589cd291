"""img2dataset's ``output_format="tfrecord"``: per shard ``NNNNN.tfrecord``, a tf.train.Example with a ``key``
feature per downloaded sample."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from relake.copies.layout import Layout, LayoutName, Written
from relake.copies.tfrecord import filter_tfrecord, record_keys

__all__ = ["TFRecord"]


class TFRecord(Layout):
    name: ClassVar[LayoutName] = "tfrecord"
    summary = "tfrecords + parquet"
    samples = "tfrecord records"
    suffix = ".tfrecord"

    def filter(self, src: Path, dst: Path, drop: set[str]) -> Written:
        digest, dropped = filter_tfrecord(src, dst, drop)
        return Written(digest, dropped)

    def sample_names(self, side: Path) -> list[str]:
        return record_keys(side)
