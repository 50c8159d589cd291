"""img2dataset's ``output_format="files"`` (its default): per shard a folder ``NNNNN/`` of each sample's files
(``{key}.jpg``, ``{key}.txt``, ``{key}.json`` …)."""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

from relake.copies.keys import SampleKeys
from relake.copies.layout import Layout, LayoutName, Written, is_image_name
from relake.copies.write import copy_file, folder_entry
from relake.errors import InputError

__all__ = ["Files"]


class Files(Layout):
    name: ClassVar[LayoutName] = "files"
    summary = "sample folders + parquet"
    samples = "the files of the sample folders"
    folder = True

    def side_name(self, stem: str) -> str:
        return stem

    def claim(self, root: Path, stem: str, names: set[str]) -> Path | None:
        return root / stem if (root / stem).is_dir() else None  # a symlink to a folder is followed

    @property
    def kind(self) -> str:
        return "a sample folder"

    def describe(self, stem: str) -> str:
        return f"sample folder {stem}/"

    def filter(self, src: Path, dst: Path, drop: set[str]) -> Written:
        """The sample folder ``src`` as ``dst`` (a new folder) without the files of the keys in ``drop``; its digest
        (``relake.copies.write.folder_digest``) and the number of files dropped. Files are copied byte for byte, in
        name order; keys are compared as normal keys (``relake.copies.keys``: ``12.jpg`` is key ``000000012``'s)."""
        keys = drop if isinstance(drop, SampleKeys) else SampleKeys(drop)
        if dst.exists():
            shutil.rmtree(dst)
        dst.mkdir()
        h = hashlib.sha256()
        dropped = 0
        for f in _files(src):
            if f.name in keys:
                dropped += 1
                continue
            digest, _ = copy_file(f, dst / f.name)
            h.update(folder_entry(f.name, digest))
        return Written(h.hexdigest(), dropped)

    def copy(self, src: Path, dst: Path) -> Written:
        return self.filter(src, dst, set())

    def sample_images(self, side: Path) -> Iterator[tuple[str, bytes]]:
        for f in _files(side):
            if is_image_name(f.name):
                yield f.name, f.read_bytes()

    def sample_names(self, side: Path) -> list[str]:
        return [f.name for f in _files(side)]


def _files(folder: Path) -> list[Path]:
    """A sample folder's files in name order; anything else in it is refused."""
    files = sorted(folder.iterdir())
    for f in files:
        if not f.is_file():
            raise InputError(f"{folder}: {f.name} is not a file; a sample folder holds only its samples' files")
    return files
