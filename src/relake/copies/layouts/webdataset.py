"""img2dataset's ``output_format="webdataset"``: per shard ``NNNNN.tar`` of each sample's files (``{key}.jpg``,
``{key}.txt``, ``{key}.json`` …), as webdataset's TarWriter writes them."""

from __future__ import annotations

import io
import tarfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, ClassVar

from relake.copies.layout import Layout, LayoutName, Sample, Written, is_image_name
from relake.copies.tar import filter_tar, sample_names
from relake.copies.write import copy_file

__all__ = ["Webdataset"]

_USER = "bigdata"  # webdataset's TarWriter: user and group "bigdata", mode 0o444


class Webdataset(Layout):
    name: ClassVar[LayoutName] = "webdataset"
    summary = "tars + parquet"
    samples = "tar members"
    suffix = ".tar"
    counted = "tar members"
    synth = True

    def filter(self, src: Path, dst: Path, drop: set[str]) -> Written:
        digest, size_in, size_out, dropped = filter_tar(src, dst, drop)
        return Written(digest, dropped, size_in, size_out)

    def sample_names(self, side: Path) -> list[str]:
        return sample_names(side)

    def sample_images(self, side: Path) -> Iterator[tuple[str, bytes]]:
        with tarfile.open(side, mode="r|") as tar:  # a stream: one member in memory at a time
            for member in tar:
                if member.isfile() and is_image_name(member.name):
                    fh = tar.extractfile(member)
                    if fh is not None:
                        yield member.name, fh.read()

    def copy(self, src: Path, dst: Path) -> Written:
        digest, size = copy_file(src, dst)
        return Written(digest, 0, size, size)

    def write_samples(self, fh: IO[bytes], samples: Sequence[Sample], mtime: float) -> None:
        with tarfile.open(fileobj=fh, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for sample in samples:
                for ext in sorted(sample.files):  # webdataset's TarWriter writes a sample's members sorted by extension
                    data = sample.files[ext]
                    info = tarfile.TarInfo(f"{sample.key}.{ext}")
                    info.size = len(data)
                    info.mtime = mtime  # a float, as webdataset writes time.time(): a pax header per member
                    info.mode = 0o444
                    info.uid = info.gid = 0
                    info.uname = info.gname = _USER
                    tar.addfile(info, io.BytesIO(data))
