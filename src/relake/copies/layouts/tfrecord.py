"""img2dataset's ``output_format="tfrecord"``: per shard ``NNNNN.tfrecord``, a tf.train.Example with a ``key``
feature per downloaded sample."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

from relake.copies.layout import Layout, LayoutName, Written
from relake.copies.tfrecord import IMAGE_FEATURE, example_feature, filter_tfrecord, read_records, record_keys

__all__ = ["TFRecord"]


class TFRecord(Layout):
    name: ClassVar[LayoutName] = "tfrecord"
    summary = "tfrecords + parquet"
    samples = "tfrecord records"
    suffix = ".tfrecord"

    def filter(self, src: Path, dst: Path, drop: set[str]) -> Written:
        digest, dropped = filter_tfrecord(src, dst, drop)
        return Written(digest, dropped)

    def sample_images(self, side: Path) -> Iterator[tuple[str, bytes]]:
        for _, body, key in read_records(side):
            image = example_feature(body[:-4], IMAGE_FEATURE)
            if image is not None:
                yield key, image

    def sample_names(self, side: Path) -> list[str]:
        return record_keys(side)
