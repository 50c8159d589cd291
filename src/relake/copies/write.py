"""Writing a cleaned copy's outputs: temp names, writes that hash what they write, byte copies, folder digests."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from relake.record import sha256_file

__all__ = ["CHUNK", "TMP_SUFFIX", "HashingWriter", "copy_file", "folder_digest", "folder_entry", "hashing_writer",
           "tmp_path"]

TMP_SUFFIX = ".relake-tmp"
CHUNK = 4 << 20


def tmp_path(path: Path) -> Path:
    """The temp name ``path`` is written under before it is renamed into place."""
    return path.with_name("." + path.name + TMP_SUFFIX)


class HashingWriter:
    """A binary file that hashes everything written to it."""

    def __init__(self, path: Path) -> None:
        self.fh = open(path, "wb")
        self.sha = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes | memoryview) -> None:
        self.sha.update(data)
        self.fh.write(data)
        self.size += len(data)

    def close(self) -> None:
        self.fh.close()


@contextmanager
def hashing_writer(path: Path) -> Iterator[HashingWriter]:
    w = HashingWriter(path)
    try:
        yield w
    finally:
        if not w.fh.closed:
            w.close()


def copy_file(src: Path, dst: Path) -> tuple[str, int]:
    """Copy bytes, returning (sha256, size) of what was written."""
    with open(src, "rb") as fh, hashing_writer(dst) as w:
        while chunk := fh.read(CHUNK):
            w.write(chunk)
    return w.sha.hexdigest(), w.size


def folder_digest(folder: Path) -> str:
    """sha256 over the sorted names and sha256 of a sample folder's files."""
    h = hashlib.sha256()
    for f in sorted(folder.iterdir()):
        h.update(folder_entry(f.name, sha256_file(f) if f.is_file() else "not a file"))
    return h.hexdigest()


def folder_entry(name: str, digest: str) -> bytes:
    """One file's line in a sample folder's digest (``folder_digest``, and the files layout's filtering copy,
    which must agree with it)."""
    return f"{name}\0{digest}\n".encode("utf-8", "surrogateescape")
