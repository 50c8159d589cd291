"""TFRecord files as img2dataset writes them (``output_format="tfrecord"``: one tf.train.Example per downloaded
sample): records read with their CRC-32C checksums, each record's ``key`` feature, and a byte-exact copy without
the records of some samples."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import google_crc32c

from relake.copies.keys import SampleKeys
from relake.copies.write import hashing_writer
from relake.errors import InputError

__all__ = ["IMAGE_FEATURE", "example_feature", "example_key", "filter_tfrecord", "masked_crc32c", "read_records",
           "record_keys"]

IMAGE_FEATURE = b"jpg"  # img2dataset's feature of the image bytes (whatever the encoding)


def masked_crc32c(data: bytes) -> int:
    """TFRecord's checksum: CRC-32C (Castagnoli, by google-crc32c), rotated right by 15 bits plus 0xa282ead8."""
    crc = int(google_crc32c.value(data))
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(buf) or shift > 63:
            raise ValueError("truncated varint")
        b = buf[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return value, pos
        shift += 7


def _proto_fields(buf: bytes) -> Iterator[tuple[int, int, bytes | int]]:
    """(field number, wire type, value) of a protobuf message: bytes for length-delimited fields."""
    pos = 0
    while pos < len(buf):
        tag, pos = _varint(buf, pos)
        number, wire = tag >> 3, tag & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
            yield number, wire, value
        elif wire == 2:
            size, pos = _varint(buf, pos)
            if pos + size > len(buf):
                raise ValueError("truncated field")
            yield number, wire, buf[pos:pos + size]
            pos += size
        elif wire in (1, 5):
            pos += 8 if wire == 1 else 4
            if pos > len(buf):
                raise ValueError("truncated field")
        else:
            raise ValueError(f"unsupported wire type {wire}")


def example_key(record: bytes) -> str | None:
    """The ``key`` feature (first bytes value, UTF-8) of a serialized tf.train.Example, None without one."""
    value = example_feature(record, b"key")
    return None if value is None else value.decode("utf-8", "surrogateescape")


def example_feature(record: bytes, wanted: bytes) -> bytes | None:
    """The first bytes value of feature ``wanted`` of a serialized tf.train.Example, None without one.

    Example: features (1) → Features: feature (1, map entries: key 1, value 2) → Feature: bytes_list (1) →
    BytesList: value (1, repeated bytes)."""
    for number, wire, features in _proto_fields(record):
        if number != 1 or wire != 2:
            continue
        assert isinstance(features, bytes)
        for n_entry, w_entry, entry in _proto_fields(features):
            if n_entry != 1 or w_entry != 2:
                continue
            assert isinstance(entry, bytes)
            name: bytes | None = None
            feature: bytes | None = None
            for n, w, v in _proto_fields(entry):
                if n == 1 and w == 2:
                    name = v  # type: ignore[assignment]
                elif n == 2 and w == 2:
                    feature = v  # type: ignore[assignment]
            if name != wanted or feature is None:
                continue
            for n_kind, w_kind, kind in _proto_fields(feature):
                if n_kind == 1 and w_kind == 2:  # bytes_list
                    assert isinstance(kind, bytes)
                    for n_v, w_v, value in _proto_fields(kind):
                        if n_v == 1 and w_v == 2:
                            assert isinstance(value, bytes)
                            return value
            return None
    return None


def read_records(src: Path) -> Iterator[tuple[bytes, bytes, str]]:
    """Each record of ``src`` as (its length and length checksum, its data and data checksum, its ``key``
    feature), in order; each record's length checksum is verified."""
    pos = 0
    with open(src, "rb") as fh:
        while head := fh.read(12):
            if len(head) < 12 or masked_crc32c(head[:8]) != int.from_bytes(head[8:], "little"):
                raise InputError(f"{src}: not a tfrecord file, or damaged at byte {pos} (a record's length or its "
                                 "checksum is wrong); restore it from the download")
            size = int.from_bytes(head[:8], "little")
            body = fh.read(size + 4)
            if len(body) < size + 4:
                raise InputError(f"{src}: truncated at byte {pos}: its last record is incomplete; restore it")
            try:
                key = example_key(body[:size])
            except ValueError as exc:
                raise InputError(f"{src}: the record at byte {pos} is not a tf.train.Example ({exc})") from exc
            if key is None:
                raise InputError(f"{src}: the record at byte {pos} has no 'key' feature; its sample cannot be "
                                 "matched to a parquet row")
            yield head, body, key
            pos += 12 + size + 4


def record_keys(src: Path) -> list[str]:
    """The ``key`` feature of every record of ``src``, in order."""
    return [key for _, _, key in read_records(src)]


def filter_tfrecord(src: Path, dst: Path, drop: set[str]) -> tuple[str, int]:
    """``src`` as ``dst`` without the records whose ``key`` feature is in ``drop`` (compared as normal keys,
    ``relake.copies.keys``: ``12`` = ``000000012``): every other record copied as its exact bytes (length, its
    checksum, data, data checksum), in order. Each record's length checksum is verified and its key read;
    (sha256 of ``dst``, records dropped)."""
    keys = drop if isinstance(drop, SampleKeys) else SampleKeys(drop)
    dropped = 0
    with hashing_writer(dst) as w:
        for head, body, key in read_records(src):
            if key in keys:
                dropped += 1
            else:
                w.write(head)
                w.write(body)
    return w.sha.hexdigest(), dropped
