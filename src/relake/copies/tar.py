"""Tars as webdataset writes them: each member's exact byte range read from the headers alone, and a byte-exact
copy without the members of some samples."""

from __future__ import annotations

import os
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import numpy as np

from relake.copies.keys import SampleKeys
from relake.copies.write import CHUNK, hashing_writer
from relake.errors import InputError

__all__ = ["TarMember", "filter_tar", "sample_names", "scan_tar"]

_BLOCK = tarfile.BLOCKSIZE
_RECORD = tarfile.RECORDSIZE
_SCAN_BUFFER = 1 << 20
_MAX_EXTENDED = 1 << 20  # bytes of a pax or GNU long-name header read into memory: a path, a size, an mtime


@dataclass(frozen=True)
class TarMember:
    name: str | None  # None for a pax global header (kept, belongs to no sample)
    start: int  # offset of its first header block (extended headers included)
    end: int  # offset after its data padding
    folder: bool = False  # a folder entry (``tar cf x.tar 00000/`` writes one): kept, belongs to no sample


def scan_tar(path: Path) -> list[TarMember]:
    """Every member of an uncompressed tar with its exact byte range, reading headers only.

    Understands ustar, pax (``x`` records: ``path``, ``size``; ``g`` global headers) and GNU (``L`` long
    names, ``K`` long link names, base-256 sizes); a data-less type (link, symlink, device, folder, fifo)
    has no data blocks, as tarfile reads them. Checks every header's checksum (vectorised, in batches).

    Every malformed header (bad checksum, size field, pax record, negative or past-the-end size) is one
    ``InputError`` naming the tar and the header's byte offset; each step advances by at least one block and an
    extended header is read only up to ``_MAX_EXTENDED`` bytes, so time and memory stay bounded. Not ``tarfile``:
    iterating it is about 6 times slower (50,000 small members: 5.0 s against 0.87 s), and on a damaged header
    after the first it ends the listing silently (a clean would drop every later member); Python 3.11's tarfile
    also raises ValueError on a negative size.
    """
    members: list[TarMember] = []
    batch = _HeaderBatch(path)
    with open(path, "rb", buffering=_SCAN_BUFFER) as fh:
        size_total = os.fstat(fh.fileno()).st_size
        pos = 0
        first: int | None = None
        long_name: str | None = None
        pax_size: int | None = None
        while True:
            fh.seek(pos)
            hdr = fh.read(_BLOCK)
            if len(hdr) < _BLOCK:
                if not hdr and first is None:
                    break  # no end-of-archive marker: tolerated at a member boundary, as tarfile does
                if pos == 0:
                    raise InputError(f"{path}: not a tar (shorter than one 512-byte header at byte 0)")
                raise InputError(f"{path}: truncated tar header at byte {pos}")
            if hdr == _ZERO_BLOCK:
                if first is not None:
                    _fail(batch, hdr, pos, f"extended header at byte {first} has no member")
                break
            batch.add(hdr, pos)
            size = _tar_number(hdr[124:136])
            if size is None or size < 0:
                _fail(batch, hdr, pos, f"bad size field {hdr[124:136]!r} in the tar header at byte {pos}")
            kind = hdr[156:157]
            start = pos if first is None else first
            if kind in (b"x", b"L", b"K", b"g"):
                if pos + _BLOCK + size > size_total:
                    _fail(batch, hdr, pos, f"truncated tar: header at byte {pos} runs past the end")
                if size > _MAX_EXTENDED:
                    _fail(batch, hdr, pos, f"extended header at byte {pos} claims {size:,} bytes (relake reads at "
                                           f"most {_MAX_EXTENDED:,}); damaged or not a webdataset tar")
                data = fh.read(size)
                pos += _BLOCK + _padded(size)
                if kind == b"g":
                    members.append(TarMember(None, start, pos))
                    first = None
                    continue
                first = start
                if kind == b"x" and (b" path=" in data or b" size=" in data):  # webdataset's hold only mtime
                    records = _pax_records(path, data, start)
                    if "path" in records:
                        long_name = records["path"]
                    if "size" in records:
                        pax_size = _int(batch, hdr, records["size"], start)
                elif kind == b"L":
                    long_name = data.rstrip(b"\0").decode("utf-8", "surrogateescape")
                continue
            if pax_size is not None:
                size = pax_size
            name = long_name if long_name is not None else _ustar_name(hdr)
            folder = kind == b"5" or (kind in (b"0", b"\0") and name.endswith("/"))
            if folder:
                name = name.rstrip("/") or name  # a folder, named as tarfile names it
            end = pos + _BLOCK + (0 if kind in _NO_DATA_TYPES else _padded(size))
            if end > size_total:
                _fail(batch, hdr, pos, f"truncated tar: member {name!r} at byte {pos} runs past the end")
            members.append(TarMember(name, start, end, folder))
            pos, first, long_name, pax_size = end, None, None, None
    batch.verify()
    return members


class _HeaderBatch:
    """Header blocks seen by scan_tar, checksummed with numpy a few thousand at a time."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.blocks: list[bytes] = []
        self.offsets: list[int] = []

    def add(self, hdr: bytes, pos: int) -> None:
        self.blocks.append(hdr)
        self.offsets.append(pos)
        if len(self.offsets) >= 8192:
            self.verify()

    def verify(self) -> None:
        if not self.offsets:
            return
        blocks = np.frombuffer(b"".join(self.blocks), dtype=np.uint8).reshape(-1, _BLOCK)
        sums = blocks.sum(axis=1, dtype=np.int64) - blocks[:, 148:156].sum(axis=1, dtype=np.int64) + 8 * 32
        stored = np.array([_stored_checksum(bytes(b)) for b in blocks[:, 148:156]], dtype=np.int64)
        for i in np.nonzero(sums != stored)[0]:
            _check_header(self.path, bytes(blocks[i]), self.offsets[int(i)])  # signed sums, or the error
        self.blocks.clear()
        self.offsets.clear()


_ZERO_BLOCK = bytes(_BLOCK)
_NO_DATA_TYPES = frozenset((b"1", b"2", b"3", b"4", b"5", b"6"))


def _padded(size: int) -> int:
    return -(-size // _BLOCK) * _BLOCK


def _stored_checksum(field: bytes) -> int:
    try:
        return int(field.rstrip(b"\0 ").lstrip(b" "), 8)
    except ValueError:
        return -1


def _check_header(path: Path, hdr: bytes, pos: int) -> None:
    """The header checksum: the unsigned (or, from old writers, signed) byte sum, its own field as spaces."""
    stored = _stored_checksum(hdr[148:156])
    unsigned = sum(hdr) - sum(hdr[148:156]) + 8 * 32
    if stored == unsigned:
        return
    high = sum(1 for b in hdr[:148] + hdr[156:] if b > 127)
    if stored != unsigned - 256 * high:
        raise InputError(f"{path}: bad tar header checksum at byte {pos}; not an uncompressed tar, or damaged")


def _tar_number(field: bytes) -> int | None:
    if field and field[0] & 0x80:  # GNU base-256
        value = int.from_bytes(field[1:], "big")
        return value - (1 << (8 * len(field) - 8)) if field[0] & 0x40 else value
    try:
        return int(field.rstrip(b"\0 ").lstrip(b" ") or b"0", 8)
    except ValueError:
        return None


def _fail(batch: _HeaderBatch, hdr: bytes, pos: int, message: str) -> NoReturn:
    """Raise ``message``, unless a header's checksum is wrong (this one's or an earlier one's, whose garbage may
    have led here): then that is the better explanation."""
    batch.verify()
    _check_header(batch.path, hdr, pos)
    raise InputError(f"{batch.path}: {message}")


def _int(batch: _HeaderBatch, hdr: bytes, text: str, pos: int) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        _fail(batch, hdr, pos, f"bad pax size {text[:40]!r} in the header at byte {pos}")
    return value


def _pax_records(path: Path, data: bytes, pos: int) -> dict[str, str]:
    """pax extended header records: '<length> <key>=<value>\\n' each."""
    out: dict[str, str] = {}
    i = 0
    while i < len(data) and data[i] != 0:
        space = data.find(b" ", i)
        try:
            length = int(data[i:space]) if space > i else 0
        except ValueError:
            length = 0
        if space <= i or length <= space - i or i + length > len(data):  # each record advances, or is refused
            raise InputError(f"{path}: bad pax record in the header at byte {pos}")
        record = data[space + 1 : i + length - 1]  # without the trailing newline
        key, _, value = record.partition(b"=")
        out[key.decode("utf-8", "surrogateescape")] = value.decode("utf-8", "surrogateescape")
        i += length
    return out


def _ustar_name(hdr: bytes) -> str:
    name = hdr[0:100].split(b"\0", 1)[0]
    if hdr[257:263] == b"ustar\0":  # POSIX ustar: a prefix field (GNU uses those bytes otherwise)
        prefix = hdr[345:500].split(b"\0", 1)[0]
        if prefix:
            name = prefix + b"/" + name
    return name.decode("utf-8", "surrogateescape")


def sample_names(path: Path) -> list[str]:
    """The names of the members of tar ``path`` that belong to samples: every member but folders and pax global
    headers, in tar order (a repeated name repeated)."""
    return [m.name for m in scan_tar(path) if m.name is not None and not m.folder]


def filter_tar(src: Path, dst: Path, drop: set[str]) -> tuple[str, int, int, int]:
    """Copy ``src`` to ``dst`` without the members of the samples whose key is in ``drop``, compared as normal
    keys (``relake.copies.keys``: folder prefix, ``./`` and leading zeros ignored); every member of such a key
    goes, repeated ones included. Kept members as their exact bytes (extended headers, header, data, padding),
    folders and pax global headers always kept, then an end-of-archive padded to whole 10240-byte records, as
    tarfile writes. Returns (sha256, bytes read, bytes written, members dropped)."""
    keys = drop if isinstance(drop, SampleKeys) else SampleKeys(drop)
    ranges: list[tuple[int, int]] = []  # kept byte ranges, merged when contiguous
    dropped = 0
    for m in scan_tar(src):
        if m.name is not None and not m.folder and m.name in keys:
            dropped += 1
            continue
        if ranges and ranges[-1][1] == m.start:
            ranges[-1] = (ranges[-1][0], m.end)
        else:
            ranges.append((m.start, m.end))
    with open(src, "rb") as fh, hashing_writer(dst) as w:
        for begin, end in ranges:
            fh.seek(begin)
            left = end - begin
            while left:
                chunk = fh.read(min(CHUNK, left))
                if not chunk:
                    raise InputError(f"{src}: ends inside a member; the tar is truncated")
                w.write(chunk)
                left -= len(chunk)
        trailer = 2 * _BLOCK
        trailer += -(w.size + trailer) % _RECORD
        w.write(bytes(trailer))
    if w.size != sum(end - begin for begin, end in ranges) + trailer:
        raise InputError(f"{src}: the rewritten tar has an unexpected size; nothing was renamed into place")
    return w.sha.hexdigest(), src.stat().st_size, w.size, dropped
