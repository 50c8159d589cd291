"""Synthetic downstream copies: what an img2dataset download of a release looks like on disk.

``synth_copy`` reads a lake version (or any parquet files), shuffles the rows (seeded), re-shards them and
writes img2dataset's output layout:

- ``--format webdataset``: per shard ``NNNNN.tar`` (for each successful sample ``{key}.json``,
  ``{key}.png``, ``{key}.txt``, in webdataset's sorted-extension order), ``NNNNN.parquet`` (a row for every
  input sample, failures included) and ``NNNNN_stats.json``;
- ``--format parquet``: per shard ``NNNNN.parquet`` with the image bytes in a ``jpg`` column (img2dataset's
  name, whatever the encoding) and ``NNNNN_stats.json``.

Columns are renamed as img2dataset does (``URL`` -> ``url``, ``TEXT`` -> ``caption``); ``SAMPLE_ID``,
``similarity``, ``hash`` and ``punsafe`` are kept under their names when the source has them; then come
``key`` (shard id and index, ``{shard:05d}{index:0Nd}`` with N = ceil(log10(shard size))), ``status``,
``error_message``, ``width``, ``height``, ``original_width``, ``original_height``, ``exif`` and the image
hash column (``md5`` or ``sha256``, hex of the image bytes; NULL for failures).

Images are real, small PNG files (a few KB: a per-row colour, a gradient and noise), made in pure Python
(zlib + struct), so every row's bytes and hash differ. About ``failure_rate`` of the rows fail (85%
``failed_to_download``, 15% ``failed_to_resize``): they have a parquet row with ``error_message`` set and a
NULL hash, and no tar members. Tars use a fixed (fractional, like webdataset's ``time.time()``) mtime, uid
and gid 0 and user ``bigdata``, so the same arguments give byte-identical files.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import struct
import zlib
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from duckdb import ColumnExpression

from relake.copies.layout import Layout, Sample
from relake.copies.layouts import LAYOUTS, describe_layouts, synth_layouts
from relake.db import connect
from relake.errors import InputError, duckdb_errors
from relake.lake import Lake
from relake.report import Report
from relake.sources import read_side, resolve_side

__all__ = ["IMAGE_ALGOS", "SynthCopyReport", "png_bytes", "sample_key", "synth_copy"]

IMAGE_ALGOS = ("md5", "sha256")
KEPT_COLUMNS = ("SAMPLE_ID", "similarity", "hash", "punsafe")  # saved as img2dataset's extra columns
_MTIME = 1_650_000_000.25  # webdataset writes time.time(): a float, hence a pax header per member
_ERRORS_DOWNLOAD = (
    "HTTP Error 404: Not Found",
    "HTTP Error 403: Forbidden",
    "<urlopen error [Errno -2] Name or service not known>",
    "The read operation timed out",
    "<urlopen error [SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed>",
    "HTTP Error 410: Gone",
    "Remote end closed connection without response",
)
_ERRORS_RESIZE = ("image decoding error", "image is too small", "cannot identify image file")


@dataclass(frozen=True)
class SynthCopyReport(Report):
    """What ``relake synth-copy`` reports: the copy written and its counts."""

    out: Path
    format: str  # a registered Layout's name
    hash: str
    rows: int
    shards: int
    successes: int
    failures: int
    bytes: int  # of everything written
    notes: tuple[str, ...] = ()  # e.g. the source's shards were read without their bytes checked


def sample_key(shard: int, index: int, shard_size: int) -> str:
    """img2dataset's key: the 5-digit shard id, then the index in the shard on ceil(log10(size)) digits."""
    digits = max(1, math.ceil(math.log10(shard_size))) if shard_size > 1 else 1
    return f"{shard:05d}{index:0{digits}d}"


def png_bytes(rng: np.random.Generator) -> tuple[bytes, int, int]:
    """A valid RGB PNG of 24..48 pixels a side: a random colour, a diagonal gradient and noise (a few KB)."""
    width, height = (int(x) for x in rng.integers(24, 49, size=2))
    base = rng.integers(0, 256, size=3)
    ys, xs = np.mgrid[0:height, 0:width]
    gradient = ((xs + ys) * 2)[:, :, None]
    noise = rng.integers(0, 40, size=(height, width, 3))
    pixels = ((base[None, None, :] + gradient + noise) % 256).astype(np.uint8).reshape(height, width * 3)
    raw = np.concatenate([np.zeros((height, 1), dtype=np.uint8), pixels], axis=1).tobytes()  # filter 0 per line
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(raw, 6)) + _chunk(
        b"IEND", b""
    ), width, height


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def synth_copy(
    lake: Lake,
    source: str,
    out: Path,
    *,
    shard_size: int = 10_000,
    hash_algo: str = "md5",
    failure_rate: float = 0.1,
    seed: int = 0,
    fmt: str = "webdataset",
    progress: Callable[[int], None] | None = None,
    verify: bool = False,
) -> SynthCopyReport:
    """Write an img2dataset-like copy of ``source`` (a version name, version folder or parquet files) to
    ``out``. ``progress(1)`` is called after each shard. Never overwrites: ``out`` must hold no shards."""
    if shard_size < 1:
        raise InputError(f"shard size must be >= 1, got {shard_size}")
    if hash_algo not in IMAGE_ALGOS:
        raise InputError(f"image hash must be one of {', '.join(IMAGE_ALGOS)}, got {hash_algo!r}")
    if not 0.0 <= failure_rate <= 1.0:
        raise InputError(f"failure rate must be between 0 and 1, got {failure_rate}")
    layouts = synth_layouts()
    if fmt not in [x.name for x in layouts]:
        raise InputError(f"format must be one of {', '.join(x.name for x in layouts)}, got {fmt!r}")
    layout = LAYOUTS[fmt]
    if seed < 0:
        raise InputError(f"seed must be >= 0, got {seed}")
    table, notes = _read_source(lake, source, verify)
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise InputError(f"{out} exists and is not a folder")
    out.mkdir(parents=True, exist_ok=True)
    shard_names = re.compile(r"\d+(" + "|".join(re.escape(s) for s in _shard_suffixes(layouts)) + ")")
    existing = sorted(p.name for p in out.iterdir() if shard_names.fullmatch(p.name))
    if existing:
        raise InputError(f"{out} already holds copy shards (e.g. {existing[0]}); synth-copy never overwrites, "
                         "choose an empty folder")

    rng = np.random.default_rng([seed, 0x5EED])
    order = rng.permutation(table.num_rows)
    table = table.take(pa.array(order, type=pa.int64()))
    n_shards = -(-table.num_rows // shard_size)
    total_bytes = successes = 0
    for shard in range(n_shards):
        part = table.slice(shard * shard_size, shard_size)
        written, ok = _write_shard(out, shard, part, shard_size, hash_algo, failure_rate, seed, layout)
        total_bytes += written
        successes += ok
        if progress is not None:
            progress(1)
    return SynthCopyReport(out, layout.name, hash_algo, table.num_rows, n_shards, successes, table.num_rows - successes,
                           total_bytes, notes)


def synth_help() -> str:
    """synth-copy's formats, for --format's help: "webdataset (tars + parquet) or parquet (…)"."""
    return describe_layouts(synth_layouts(), summaries=True) + "."


def _shard_suffixes(layouts: Sequence[Layout]) -> list[str]:
    """The names of a shard's files after its number that synth-copy never overwrites."""
    sides = [x.suffix for x in layouts if x.suffix is not None]
    return [".parquet", *sides, "_stats.json"]


def _read_source(lake: Lake, source: str, verify: bool) -> tuple[pa.Table, tuple[str, ...]]:
    """The source's url, caption and kept extra columns, renamed, in source order; and a note when its shards
    were read without their bytes checked (``verify`` re-hashes them first)."""
    with connect(lake if lake.root.is_dir() else None) as db:
        side = resolve_side(lake, db, source, verify=verify)
        if side.roles.url is None:
            raise InputError(f"{source}: no URL column found (columns: {', '.join(c.name for c in side.columns)})")
        names = [c.name for c in side.columns]
        exprs = [ColumnExpression(side.roles.url).alias("url")]
        if side.roles.caption is not None:
            exprs.append(ColumnExpression(side.roles.caption).alias("caption"))
        for wanted in KEPT_COLUMNS:
            found = [n for n in names if n.lower() == wanted.lower()]
            if found and found[0] not in (side.roles.url, side.roles.caption):
                exprs.append(ColumnExpression(found[0]).alias(wanted))
        with duckdb_errors(f"{source}: not readable as parquet"):
            rel = read_side(db, side, ordered=True)
            table: pa.Table = rel.select(*exprs).to_arrow_table()
    if "caption" not in table.column_names:
        table = table.append_column("caption", pa.nulls(table.num_rows, type=pa.string()))
        table = table.select(["url", "caption", *table.column_names[1:-1]])
    return table, (side.unchecked_note,) if side.unchecked_note else ()


def _write_shard(
    out: Path, shard: int, part: pa.Table, shard_size: int, hash_algo: str, failure_rate: float, seed: int,
    layout: Layout,
) -> tuple[int, int]:
    """One shard's files; returns (bytes written, successful samples)."""
    rng = np.random.default_rng([seed, shard])
    n = part.num_rows
    failed = rng.random(n) < failure_rate
    resize_failure = rng.random(n) < 0.15
    error_pick = rng.integers(0, 1 << 30, size=n)
    orig_w = rng.integers(200, 2400, size=n)
    orig_h = rng.integers(200, 2400, size=n)
    columns = part.to_pydict()
    extra = [c for c in part.column_names if c not in ("url", "caption")]
    meta: dict[str, list[Any]] = {k: [] for k in ("key", "status", "error_message", "width", "height",
                                                   "original_width", "original_height", "exif", hash_algo)}
    images: list[bytes | None] = []
    status_dict: Counter[str] = Counter()
    for i in range(n):
        meta["key"].append(sample_key(shard, i, shard_size))
        if failed[i]:
            errors = _ERRORS_RESIZE if resize_failure[i] else _ERRORS_DOWNLOAD
            message = errors[int(error_pick[i]) % len(errors)]
            status = "failed_to_resize" if resize_failure[i] else "failed_to_download"
            values: tuple[Any, ...] = (status, message, None, None, None, None, None, None)
            images.append(None)
            status_dict[message] += 1
        else:
            data, w, h = png_bytes(rng)
            digest = hashlib.new(hash_algo, data).hexdigest()
            values = ("success", None, w, h, int(orig_w[i]), int(orig_h[i]), None, digest)
            images.append(data)
            status_dict["success"] += 1
        for name, value in zip(list(meta)[1:], values, strict=True):
            meta[name].append(value)

    fields = [part.schema.field(c) for c in part.column_names]
    fields += [pa.field("key", pa.string()), pa.field("status", pa.string()), pa.field("error_message", pa.string())]
    fields += [pa.field(c, pa.int64()) for c in ("width", "height", "original_width", "original_height")]
    fields += [pa.field("exif", pa.string()), pa.field(hash_algo, pa.string())]
    data_cols: dict[str, list[Any]] = {c: columns[c] for c in part.column_names} | meta
    if layout.image_column is not None:
        fields.append(pa.field(layout.image_column, pa.binary()))
        data_cols[layout.image_column] = images
    schema = pa.schema(fields)
    table = pa.Table.from_pydict(data_cols, schema=schema)

    name = f"{shard:05d}"
    written = 0
    side = layout.side_name(name)
    if side is not None:
        with _create(out / side) as fh:
            layout.write_samples(fh, _samples(data_cols, images, extra, hash_algo), _MTIME + shard)
            written += fh.tell()
    with _create(out / f"{name}.parquet") as fh:
        pq.write_table(table, fh, compression="snappy")
        written += fh.tell()
    successes = status_dict["success"]
    start = 1_650_000_000.0 + shard * 60.0
    duration = 20.0 + n * 0.01
    stats = {
        "count": n,
        "successes": successes,
        "failed_to_download": int(np.count_nonzero(failed & ~resize_failure)),
        "failed_to_resize": int(np.count_nonzero(failed & resize_failure)),
        "duration": duration,
        "start_time": start,
        "end_time": start + duration,
        "status_dict": dict(status_dict.most_common()),
    }
    text = json.dumps(stats, indent=4).encode("utf-8")
    with _create(out / f"{name}_stats.json") as fh:
        fh.write(text)
    return written + len(text), successes


def _samples(
    cols: dict[str, list[Any]], images: Sequence[bytes | None], extra: Sequence[str], hash_algo: str
) -> list[Sample]:
    """Each successful sample's files: its metadata (``json``), image (``png``) and caption (``txt``)."""
    meta_names = ["url", "caption", *extra, "key", "status", "error_message", "width", "height",
                  "original_width", "original_height", "exif", hash_algo]
    samples = []
    for i, image in enumerate(images):
        if image is None:
            continue
        meta = {m: cols[m][i] for m in meta_names if m in cols}
        caption = cols["caption"][i]
        samples.append(Sample(cols["key"][i], {
            "json": json.dumps(meta, indent=4).encode("utf-8"),
            "png": image,
            "txt": ("" if caption is None else str(caption)).encode("utf-8"),
        }))
    return samples


def _create(path: Path) -> IO[bytes]:
    try:
        return open(path, "xb")
    except FileExistsError:
        raise InputError(f"{path} already exists; synth-copy never overwrites files") from None
