"""What an img2dataset output layout is to relake: the ``Layout`` each module of ``relake.copies.layouts`` gives.

Every layout has per shard ``NNNNN.parquet`` (a row per input sample, cleaned by relake alike for all) and
``NNNNN_stats.json``; a layout adds where the samples' own bytes live next to the parquet file, its *side*: a
file (``NNNNN.tar``, ``NNNNN.tfrecord``) or a folder (``NNNNN/``), or nothing (the parquet layout, whose
images are a parquet column). A layout says which side is a shard's, how to copy it without the samples of some
keys (byte-exact: every other sample's bytes unchanged) and, for synth-copy, how to write one.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, ClassVar, Literal

from relake.copies.write import copy_file

__all__ = ["IMAGE_EXTENSIONS", "Layout", "LayoutName", "Sample", "Written", "is_image_name"]

LayoutName = Literal["webdataset", "files", "tfrecord", "parquet"]
"""img2dataset's ``output_format`` values that relake reads (the built-in layouts' names)."""


IMAGE_EXTENSIONS = frozenset({"jpg", "jpeg", "png", "webp"})  # what img2dataset's encode_format writes (any case)


def is_image_name(name: str) -> bool:
    """Whether a side's member or file name is a sample's image (by extension: ``{key}.jpg``)."""
    return name.rpartition(".")[2].lower() in IMAGE_EXTENSIONS


@dataclass(frozen=True)
class Written:
    """A side written into a cleaned copy: what clean records of it."""

    digest: str  # sha256 of the file; of a folder, ``relake.copies.write.folder_digest``
    dropped: int = 0  # the dropped samples' members, files or records
    bytes_in: int = 0  # sizes read and written, for layouts whose report counts them (tars)
    bytes_out: int = 0


@dataclass(frozen=True)
class Sample:
    """One downloaded sample as synth-copy writes it: its key and its files by extension (``jpg``, ``txt`` ...)."""

    key: str
    files: dict[str, bytes]


class Layout(ABC):
    """One img2dataset output layout. Register an instance in ``relake.copies.layouts.LAYOUTS``."""

    name: ClassVar[str]  # as reports and synth-copy's --format name it
    summary: ClassVar[str]  # for help texts, e.g. "tars + parquet"
    samples: ClassVar[str]  # what its side holds per sample, for messages, e.g. "tar members"
    suffix: ClassVar[str | None] = None  # of the side file, "<stem><suffix>"; None for no side file
    folder: ClassVar[bool] = False  # the side is the folder "<stem>/" (its outputs are recorded as "<stem>/")
    needs_keys: ClassVar[bool] = True  # the side's samples are found by the parquet's key column
    counted: ClassVar[str | None] = None  # what clean's report counts as removed members and bytes (e.g. "tar members")
    image_column: ClassVar[str | None] = None  # the parquet column of the images' bytes (synth-copy writes it)
    synth: ClassVar[bool] = False  # synth-copy can write this layout

    def side_name(self, stem: str) -> str | None:
        """The name of shard ``stem``'s side in the copy folder, None for a layout without one."""
        return stem + self.suffix if self.suffix is not None else None

    def claim(self, root: Path, stem: str, names: set[str]) -> Path | None:
        """Shard ``stem``'s side in the copy folder ``root`` (its top-level ``names``), None when absent."""
        name = self.side_name(stem)
        return root / name if name is not None and name in names else None

    @property
    def kind(self) -> str:
        """A side, for messages: "a .tar"."""
        return f"a {self.suffix}"

    def describe(self, stem: str) -> str:
        """Shard ``stem``'s side, for messages: "00000.tar"."""
        return self.side_name(stem) or stem

    @abstractmethod
    def filter(self, src: Path, dst: Path, drop: set[str]) -> Written:
        """The side ``src`` written as ``dst`` without the samples whose key is in ``drop``, every other sample's
        bytes unchanged. Clean gives a ``relake.copies.keys.SampleKeys``: ``key_or_name in drop`` matches however
        the key is spelled (folder prefix, ``./``, leading zeros)."""

    def sample_names(self, side: Path) -> list[str] | None:
        """The names in the side ``side`` that carry a sample key (member or file names, record keys), in order;
        check reports those whose key has no parquet row (orphans), clean verifies its output with them. None
        when the layout cannot list them (then neither is done)."""
        return None

    def sample_images(self, side: Path) -> Iterator[tuple[str, bytes]] | None:
        """Each sample image in the side ``side`` as (the member, file or record name carrying its key, its
        encoded bytes), in order; None when the layout's side holds no images (the parquet layout keeps them in
        ``image_column``)."""
        return None

    def copy(self, src: Path, dst: Path) -> Written:
        """The side ``src`` of an unaffected shard as ``dst``, byte for byte."""
        digest, _ = copy_file(src, dst)
        return Written(digest)

    def write_samples(self, fh: IO[bytes], samples: Sequence[Sample], mtime: float) -> None:
        """synth-copy: a side holding ``samples`` (files with modification time ``mtime``), written to ``fh``."""
        raise NotImplementedError(f"synth-copy does not write the {self.name} layout")
