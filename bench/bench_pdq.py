"""Benchmark: PDQ image matching (`relake check --blocklist` with an image-pdq list), against decoding alone.

    python bench/bench_pdq.py [--rows 50000] [--shard-size 10000] [--work /tmp/relake-bench-pdq]
                              [--entries 1K,10K,100K,1M] [--queries 20000]

Needs the pdq extra (``pip install -e '.[pdq]'``). Builds (once, reused) a synthetic img2dataset webdataset copy
(``synth-copy``: real PNGs, 24-48 px a side, 10% failed downloads) and an image-pdq blocklist of 1,000 random
hashes plus the hashes of 50 of the copy's images, then times, each once on a warm page cache, in one process:

- ``decode``: every image of the tars read with tarfile and decoded to RGB by Pillow (the floor);
- ``decode+pdq``: the same plus ``relake.pdq.hash_image`` (PDQ, uniform-border check, trimmed hash if any);
- ``relake check``: ``check_copy(..., blocklist=..., workers=1)``: the whole check, one process;
- ``relake check --workers N``: the same with N spawned processes (wall time).

Images/s per core is images ÷ CPU seconds of the process(es). Then the matching cost alone
(``relake.hamming.HammingIndex``, 256-bit hashes within 31 bits) for lists of each ``--entries`` size: the
index's build time and the search time per query hash (CPU time: the machine may be shared), against a
brute-force scan (numpy, every pair, one query at a time) where that is affordable. Lists of up to 4,096
hashes are scanned (every pair, vectorised), larger ones indexed. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import tarfile
import time
from pathlib import Path

import numpy as np


def _size(text: str) -> int:
    text = text.strip().upper()
    mult = {"K": 1_000, "M": 1_000_000}.get(text[-1], 1)
    return int(float(text.rstrip("KM")) * mult)


def _cpu() -> float:
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def build_inputs(work: Path, rows: int, shard_size: int) -> tuple[Path, Path]:
    from relake.blocklist import add_blocklist, list_blocklists
    from relake.lake import Lake
    from relake.pdq import hash_image
    from relake.synth import synth_original
    from relake.synthcopy import synth_copy

    src, copy, lake_root = work / "src", work / "copy", work / "lake"
    if not copy.is_dir():
        synth_original(src, rows, max(1, rows // 500_000), seed=1)
        t = time.perf_counter()
        synth_copy(Lake.at(work / "no-lake"), str(src), copy, shard_size=shard_size, seed=1)
        print(f"synth-copy: {rows:,} rows in {time.perf_counter() - t:.1f} s")
    lake = Lake.at(lake_root)
    if "pdq" not in [b.name for b in list_blocklists(lake).blocklists]:
        rng = np.random.default_rng(3)
        lines = [rng.integers(0, 256, 32, dtype=np.uint8).tobytes().hex() for _ in range(1000)]
        with tarfile.open(next(iter(sorted(copy.glob("*.tar"))))) as tar:
            pngs = [m for m in tar.getmembers() if m.name.endswith(".png")][:50]
            for m in pngs:
                fh = tar.extractfile(m)
                assert fh is not None
                lines.append(hash_image(fh.read()).hashes[0].hex())
        listing = work / "pdq.txt"
        listing.write_text("\n".join(lines) + "\n", encoding="utf-8")
        add_blocklist(lake, "pdq", listing, "image-pdq")
    return copy, lake_root


def tar_images(copy: Path) -> list[bytes]:
    out = []
    for p in sorted(copy.glob("*.tar")):
        with tarfile.open(p) as tar:
            for m in tar.getmembers():
                if m.name.endswith((".png", ".jpg")):
                    fh = tar.extractfile(m)
                    assert fh is not None
                    out.append(fh.read())
    return out


def timed(label: str, images: int, fn: object) -> None:
    assert callable(fn)
    cpu0, t0 = _cpu(), time.perf_counter()
    fn()
    wall, cpu = time.perf_counter() - t0, _cpu() - cpu0
    print(f"| {label} | {images:,} | {wall:.1f} | {cpu:.1f} | {images / wall:,.0f} | {images / cpu:,.0f} |")


def bench_check(copy: Path, lake_root: Path, workers: int) -> None:
    from relake.copies.check import check_copy
    from relake.lake import Lake
    from relake.pdq import decode, hash_image

    images = tar_images(copy)  # read once, outside the timings, so decode and hash times are CPU alone
    n = len(images)
    print(f"\ncopy: {copy} ({n:,} images in {len(list(copy.glob('*.tar')))} tars, "
          f"{sum(p.stat().st_size for p in copy.glob('*.tar')) / 1e6:.0f} MB)\n")
    print("| task | images | wall s | CPU s | images/s | images/s per core |")
    print("|---|---|---|---|---|---|")
    timed("decode (Pillow, floor)", n, lambda: [decode(d) for d in images])
    timed("decode + PDQ (+ border check)", n, lambda: [hash_image(d) for d in images])
    lake = Lake.at(lake_root)
    result: list[int] = []

    def check(w: int) -> None:
        r = check_copy(lake, copy, None, blocklist="pdq", workers=w)
        assert r.pdq is not None
        result.append(r.pdq.matched)

    timed("relake check --blocklist (1 process)", n, lambda: check(1))
    if workers > 1:
        timed(f"relake check --blocklist --workers {workers}", n, lambda: check(workers))
    print(f"\nmatched: {result} (50 of the listed hashes are of the copy's images)")


def bench_matching(sizes: list[int], queries: int) -> None:
    from relake.hamming import HammingIndex, brute_force

    rng = np.random.default_rng(5)
    q = rng.integers(0, 256, (queries, 32), dtype=np.uint8)
    print(f"\nmatching {queries:,} query hashes (a tenth planted within 31 bits of a listed one):\n")
    print("| listed hashes | index build CPU s | search CPU µs/query | brute force CPU µs/query | matches |")
    print("|---|---|---|---|---|")
    for m in sizes:
        listed = rng.integers(0, 256, (m, 32), dtype=np.uint8)
        planted = q.copy()
        for i in range(0, queries, 10):
            bits = np.unpackbits(listed[int(rng.integers(0, m))])
            bits[rng.choice(256, size=int(rng.integers(0, 32)), replace=False)] ^= 1
            planted[i] = np.packbits(bits)
        t = time.process_time()  # CPU time: the machine may be shared
        index = HammingIndex(listed, 31)
        build = time.process_time() - t
        t = time.process_time()
        found = index.search(planted)
        per = (time.process_time() - t) / queries * 1e6
        brute = "-"
        if m * queries <= 2e9:
            few = planted[: max(10, min(queries, int(2e8 // m)))]
            t = time.process_time()
            brute_force(listed, few, 31)
            brute = f"{(time.process_time() - t) / len(few) * 1e6:,.0f}"
        print(f"| {m:,} | {build:.2f} | {per:,.0f} | {brute} | {len(found[0]):,} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=_size, default=50_000)
    ap.add_argument("--shard-size", type=int, default=10_000)
    ap.add_argument("--work", type=Path, default=Path("/tmp/relake-bench-pdq"))
    ap.add_argument("--entries", default="1K,10K,100K,1M")
    ap.add_argument("--queries", type=_size, default=20_000)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--skip-check", action="store_true", help="only the matching cost")
    args = ap.parse_args()
    print(f"machine: {os.cpu_count()} cores, {platform.python_version()}, load {os.getloadavg()[0]:.2f}")
    if not args.skip_check:
        args.work.mkdir(parents=True, exist_ok=True)
        copy, lake_root = build_inputs(args.work, args.rows, args.shard_size)
        bench_check(copy, lake_root, args.workers)
    bench_matching([_size(s) for s in args.entries.split(",")], args.queries)
    print(f"\nload at end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
