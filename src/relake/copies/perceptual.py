"""Check a copy's images against an ``image-pdq`` blocklist: every image the copy holds (tar members, sample
files, tfrecord records, a parquet image column) is decoded and PDQ-hashed (``relake.pdq``, uniform borders
trimmed too), and matched within ``max_distance`` bits by a multi-index search (``relake.hamming``).

One job per shard (on an engine: Ray tasks, or ``workers`` processes here: pdqhash holds the GIL). With a
``cache`` folder (a clean's ``OUT/.relake-pdq``, removed when the clean completes), each shard's result is kept
there, keyed by the shard's files (size, mtime), the list's sha256 and the thresholds, so an interrupted clean
resumes without hashing its images again. A job reads
its shard's parquet keys and statuses and its side's images, and returns per matched row its position, key,
distance and the quality of the hash that matched, plus the keys of images below ``min_quality``, undecodable, or
missing (a row whose status is ``success`` without an image). Listed hashes never leave the job: a report names
rows by key, never by a hash (the copy's, which is near a listed one, included).
"""

from __future__ import annotations

import hashlib
import json
import os
import tarfile
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from functools import lru_cache
from multiprocessing import get_context
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

import numpy as np
import pyarrow.parquet as pq

from relake.copies.keys import index_rows, normal_key
from relake.copies.layouts import LAYOUTS
from relake.copies.resume import source_ids
from relake.copies.write import TMP_SUFFIX
from relake.errors import InputError, first_line
from relake.hamming import HammingIndex, hex_hashes
from relake.pdq import hash_image
from relake.report import Report

if TYPE_CHECKING:
    from relake.blocklist import Blocklist
    from relake.copies.open import CopyLayout
    from relake.engine import Engine

__all__ = ["PdqCheck", "PdqJob", "PdqMatch", "PdqShard", "check_images", "check_shard_images"]

_SMALL_COPY = 32 << 20  # bytes of parquet and side files below which images are hashed in this process
_KEYS_KEPT = 1000  # keys listed per kind of unjudged image and shard (counts are exact)


@dataclass(frozen=True)
class PdqJob:
    """One copy shard's images checked against a blocklist's ``entries.parquet`` (absolute paths)."""

    label: str
    layout: str
    parquet: str
    side: str | None
    key_column: str | None
    status_column: str | None
    entries: str
    max_distance: int
    min_quality: int
    cache: str | None = None  # the shard's result file, reused when its ``ident`` matches
    ident: str = ""


@dataclass(frozen=True)
class PdqMatch(Report):
    """A row whose image is within the distance of a listed hash: its key, the distance and its hash's quality."""

    shard: str
    pos: int
    key: str | None
    distance: int
    quality: int
    trimmed: bool  # the match is the image's hash with its uniform border trimmed


@dataclass
class PdqShard(Report):
    """What a job found in one shard (picklable: it comes back from a Ray task or a process); summed over the
    shards, the counts of a ``PdqCheck``."""

    matches: list[PdqMatch] = field(default_factory=list)
    hashed: int = 0  # images decoded and hashed
    trimmed: int = 0  # of which had a uniform border
    low_quality: int = 0
    undecodable: int = 0
    missing: int = 0
    low_quality_keys: list[str] = field(default_factory=list)
    undecodable_keys: list[str] = field(default_factory=list)
    missing_keys: list[str] = field(default_factory=list)

    def add(self, other: PdqShard) -> None:
        for name in ("hashed", "trimmed", "low_quality", "undecodable", "missing"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for name in ("matches", "low_quality_keys", "undecodable_keys", "missing_keys"):
            getattr(self, name).extend(getattr(other, name))


@dataclass(kw_only=True)
class PdqCheck(PdqShard):
    """The PDQ part of a check: the list's name and size, the thresholds, counts, and the matched rows by key
    (never a hash)."""

    json_computed: ClassVar[tuple[str, ...]] = ("matched",)

    blocklist: str
    entries: int
    max_distance: int
    min_quality: int

    @property
    def matched(self) -> int:
        return len(self.matches)


_LOCK = threading.Lock()


@lru_cache(maxsize=2)
def _cached_index(entries: str, size: int, mtime_ns: int, max_distance: int) -> HammingIndex:
    del size, mtime_ns  # part of the cache key: a changed file is read again
    values = pq.read_table(entries, columns=["entry"]).column(0).to_pylist()
    listed, _ = hex_hashes(values)
    return HammingIndex(listed, max_distance)


def _index(entries: str, max_distance: int) -> HammingIndex:
    """The blocklist's index, built once per process (a Ray worker runs many shards)."""
    st = os.stat(entries)
    with _LOCK:
        return _cached_index(entries, st.st_size, st.st_mtime_ns, max_distance)


def _read_rows(job: PdqJob) -> tuple[list[str | None], list[str | None], list[bytes | None] | None]:
    """The shard's keys and statuses (text, None where NULL or absent) and, for the parquet layout, its images."""
    layout = LAYOUTS[job.layout]
    try:
        schema = pq.read_schema(job.parquet)
        n = pq.ParquetFile(job.parquet).metadata.num_rows

        def column(name: str | None) -> list[str | None]:
            if name is None or name not in schema.names:
                return [None] * n
            return [None if v is None else str(v) for v in pq.read_table(job.parquet, columns=[name]).column(0)
                    .to_pylist()]

        keys, statuses = column(job.key_column), column(job.status_column)
        images: list[bytes | None] | None = None
        if layout.image_column is not None:
            found = next((c for c in schema.names if c.lower() == layout.image_column), None)
            images = ([None] * n if found is None
                      else pq.read_table(job.parquet, columns=[found]).column(0).to_pylist())
    except Exception as exc:  # pyarrow raises several types for a damaged file
        raise InputError(f"{job.label}: not a readable parquet file ({first_line(exc)})") from exc
    return keys, statuses, images


def _shard_images(job: PdqJob, keys: list[str | None], images: list[bytes | None] | None,
                  ) -> Iterator[tuple[int, bytes]]:
    """(row position, image bytes) of every image of the shard that belongs to a parquet row."""
    if images is not None:
        yield from ((pos, data) for pos, data in enumerate(images) if data)
        return
    if job.side is None:
        return
    by_key = index_rows(job.label, keys)
    pos_of = {normal: i for i, k in enumerate(keys) if k is not None and (normal := normal_key(k)) in by_key}
    seen: set[int] = set()
    found = LAYOUTS[job.layout].sample_images(Path(job.side))
    try:
        for name, data in found or ():
            pos = pos_of.get(normal_key(name))
            if pos is not None and pos not in seen:  # an orphan's image is judged by check's orphan report
                seen.add(pos)
                yield pos, data
    except (tarfile.TarError, OSError) as exc:
        raise InputError(f"{job.label}: cannot read its images from {Path(job.side).name} ({first_line(exc)}); "
                         "restore it from the download") from exc


def check_shard_images(job: PdqJob) -> PdqShard:
    """Hash and match one shard's images (see the module); the cached result when there is one for them."""
    if job.cache is not None:
        cached = _read_cache(Path(job.cache), job.ident)
        if cached is not None:
            return cached
    out = _check_shard(job)
    if job.cache is not None:
        tmp = Path(job.cache + TMP_SUFFIX)
        tmp.write_text(json.dumps({"ident": job.ident, "result": out.to_dict()}), encoding="utf-8")
        os.replace(tmp, job.cache)
    return out


def _read_cache(path: Path, ident: str) -> PdqShard | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("ident") != ident:
            return None
        result = dict(data["result"])
        result["matches"] = [PdqMatch(**m) for m in result["matches"]]
        return PdqShard(**result)
    except (OSError, ValueError, KeyError, TypeError):
        return None  # none, or unreadable: hashed again


def _check_shard(job: PdqJob) -> PdqShard:
    index = _index(job.entries, job.max_distance)
    keys, statuses, images = _read_rows(job)
    out = PdqShard()
    queried: list[bytes] = []
    owner: list[tuple[int, int, bool]] = []  # per queried hash: row position, quality, trimmed
    seen: set[int] = set()

    def note(kind: str, pos: int) -> None:
        key = keys[pos] if keys[pos] is not None else f"#{pos}"
        setattr(out, kind, getattr(out, kind) + 1)
        listed: list[str] = getattr(out, kind + "_keys")
        if len(listed) < _KEYS_KEPT:
            listed.append(str(key))

    for pos, data in _shard_images(job, keys, images):
        seen.add(pos)
        try:
            hashed = hash_image(data)
        except InputError:
            raise
        except Exception:  # Pillow raises many types for bad bytes; the key is reported, never the message
            note("undecodable", pos)
            continue
        out.hashed += 1
        out.trimmed += hashed.trimmed
        good = [(h, q, i > 0) for i, (h, q) in enumerate(zip(hashed.hashes, hashed.qualities, strict=True))
                if q >= job.min_quality]
        if not good:
            note("low_quality", pos)
            continue
        for h, q, trimmed in good:
            queried.append(h)
            owner.append((pos, q, trimmed))
    for pos, status in enumerate(statuses):
        if pos not in seen and (status == "success" or (job.status_column is None and keys[pos] is not None)):
            note("missing", pos)
    if queried:
        arr = np.frombuffer(b"".join(queried), dtype=np.uint8).reshape(-1, 32)
        q_rows, _, dist = index.search(arr)
        best: dict[int, tuple[int, int, bool]] = {}
        for qi, d in zip(q_rows.tolist(), dist.tolist(), strict=True):
            pos, quality, trimmed = owner[qi]
            if pos not in best or d < best[pos][0]:
                best[pos] = (d, quality, trimmed)
        stem = Path(job.parquet).stem
        out.matches = [PdqMatch(stem, pos, keys[pos], d, q, t) for pos, (d, q, t) in sorted(best.items())]
    return out


def _default_workers(layout: CopyLayout) -> int:
    """One process per CPU, or this one alone for a small copy (starting a process costs about a second)."""
    size = 0
    for s in layout.shards:
        for p in (s.parquet, s.side):
            if p is not None and p.is_dir():
                size += sum(e.stat().st_size for e in os.scandir(p) if e.is_file())
            elif p is not None:
                size += p.stat().st_size
    return (os.cpu_count() or 1) if size >= _SMALL_COPY else 1


def _run_local(jobs: Sequence[PdqJob], workers: int) -> list[PdqShard]:
    if workers <= 1 or len(jobs) <= 1:
        return [check_shard_images(j) for j in jobs]
    # processes, not threads: pdqhash holds the GIL; spawned, not forked (the driver holds DuckDB connections)
    with ProcessPoolExecutor(max_workers=min(workers, len(jobs)), mp_context=get_context("spawn")) as pool:
        return list(pool.map(check_shard_images, jobs))


def check_images(
    layout: CopyLayout, blocklist: Blocklist, *, max_distance: int, min_quality: int, engine: Engine | None = None,
    workers: int | None = None, cache: Path | None = None,
) -> tuple[PdqCheck, list[list[PdqMatch]]]:
    """Every shard's images against the blocklist: the summary and each shard's matches (in shard order);
    ``cache``: a folder keeping each shard's result (see the module)."""
    if cache is not None:
        cache.mkdir(parents=True, exist_ok=True)
    jobs = []
    for s in layout.shards:
        files = [p for p in (s.parquet, s.side) if p is not None]
        ident = hashlib.sha256(json.dumps([source_ids(files), blocklist.sha256, max_distance, min_quality,
                                           layout.key, layout.status]).encode()).hexdigest()
        jobs.append(PdqJob(f"shard {s.name} of {layout.root}", layout.layout, str(s.parquet.absolute()),
                           str(s.side.absolute()) if s.side is not None else None, layout.key, layout.status,
                           str(blocklist.path.absolute()), max_distance, min_quality,
                           str((cache / f"{s.name}.json").absolute()) if cache is not None else None, ident))
    if engine is not None:
        results = engine.map(check_shard_images, jobs, label=lambda j: j.label)
    else:
        results = _run_local(jobs, workers if workers is not None else _default_workers(layout))
    summary = PdqCheck(blocklist=blocklist.name, entries=blocklist.unique_entries, max_distance=max_distance,
                       min_quality=min_quality)
    for r in results:
        summary.add(r)
    return summary, [r.matches for r in results]
