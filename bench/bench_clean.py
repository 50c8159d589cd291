"""Benchmark: `relake clean` of a webdataset copy against plain re-packs of the same tars, in one run.

    python bench/bench_clean.py --rows 60000 --shard-size 5000 [--affected 0.001] [--work /tmp/relake-bench-clean]

Builds a synthetic img2dataset copy (`synth-copy`) and a public manifest hitting ``--affected`` of its URLs
(spread so that most shards need rewriting), then times, each once on a warm page cache:

- ``relake-clean``: check + clean (parquet rows dropped, tar members dropped, others copied byte for byte);
- ``relake-clean-resume``: the same again on the finished output (every output re-hashed, nothing written);
- ``python-tarfile-repack``: every tar rewritten member by member with tarfile (``addfile(info, stream)``);
- ``tar-cf-repack``: ``tar -cf`` of each shard's extracted members (extraction not timed);
- ``cp``: ``shutil.copyfile`` of every tar (the disk/page-cache ceiling).

Throughput is MB of input tars per second. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import random
import shutil
import subprocess
import tarfile
import time
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq


def build_inputs(work: Path, rows: int, shard_size: int, affected: float) -> tuple[Path, Path]:
    from relake.canonical import url_sha256
    from relake.lake import Lake
    from relake.synth import synth_original
    from relake.synthcopy import synth_copy

    src, copy, manifest = work / "src", work / "copy", work / "manifest"
    if not copy.is_dir():
        synth_original(src, rows, max(1, rows // 500_000), seed=1)
        t = time.perf_counter()
        synth_copy(Lake.at(work / "no-lake"), str(src), copy, shard_size=shard_size, seed=1)
        print(f"synth-copy: {rows:,} rows in {time.perf_counter() - t:.1f} s")
    urls = [u for p in sorted(copy.glob("*.parquet")) for u in pq.read_table(p, columns=["url"])["url"].to_pylist()]
    picked = random.Random(2).sample(urls, max(1, int(len(urls) * affected)))
    hashes = sorted({h for h in (url_sha256(u) for u in picked) if h is not None})
    shutil.rmtree(manifest, ignore_errors=True)
    manifest.mkdir()
    pq.write_table(pa.table({"url_sha256": hashes, "category": ["safety"] * len(hashes)}), manifest / "removed.parquet")
    (manifest / "manifest.json").write_text(json.dumps({
        "format": "relake.record/1", "hash": "sha256", "canonical_url_version": "1", "image_hash": None,
        "rows": len(hashes), "counts": {"safety": len(hashes)},
        "files": {"removed.parquet": hashlib.sha256((manifest / "removed.parquet").read_bytes()).hexdigest()}}))
    return copy, manifest


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def tarfile_repack(tars: list[Path], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for t in tars:
        with tarfile.open(t) as src, tarfile.open(out / t.name, "w", format=tarfile.PAX_FORMAT) as dst:
            for m in src:
                dst.addfile(m, src.extractfile(m))


def tar_cf_repack(extracted: list[Path], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for d in extracted:
        subprocess.run(["tar", "-cf", str(out / (d.name + ".tar")), "-C", str(d), "."], check=True)


def copy_all(tars: list[Path], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for t in tars:
        shutil.copyfile(t, out / t.name)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=60_000)
    ap.add_argument("--shard-size", type=int, default=5_000)
    ap.add_argument("--affected", type=float, default=0.001, help="share of the copy's URLs in the manifest")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--work", type=Path, default=Path("/tmp/relake-bench-clean"))
    args = ap.parse_args()

    from relake.copies import clean_copy
    from relake.lake import Lake

    work: Path = args.work
    work.mkdir(parents=True, exist_ok=True)
    copy, manifest = build_inputs(work, args.rows, args.shard_size, args.affected)
    tars = sorted(copy.glob("*.tar"))
    mb = sum(t.stat().st_size for t in tars) / 1e6
    for t in tars:  # warm the page cache, as for every job
        hashlib.sha256(t.read_bytes())
    outs = [work / n for n in ("out-relake", "out-tarfile", "out-tar-cf", "out-cp", "extracted")]
    for o in outs:
        shutil.rmtree(o, ignore_errors=True)
    extracted = []
    for t in tars:
        d = work / "extracted" / t.stem
        d.mkdir(parents=True)
        with tarfile.open(t) as tf:
            tf.extractall(d, filter="data")
        extracted.append(d)

    lake = Lake.at(work / "no-lake")
    results: dict[str, float] = {}
    report = None

    def relake_clean() -> None:
        nonlocal report
        report = clean_copy(lake, copy, manifest, work / "out-relake", workers=args.workers)

    results["relake-clean"] = timed(relake_clean)
    assert report is not None
    results["relake-clean-resume"] = timed(lambda: clean_copy(lake, copy, manifest, work / "out-relake",
                                                              workers=args.workers))
    results["python-tarfile-repack"] = timed(lambda: tarfile_repack(tars, work / "out-tarfile"))
    if shutil.which("tar"):
        results["tar-cf-repack"] = timed(lambda: tar_cf_repack(extracted, work / "out-tar-cf"))
    results["cp"] = timed(lambda: copy_all(tars, work / "out-cp"))

    print(f"\n{platform.processor() or platform.machine()}, python {platform.python_version()}; "
          f"{len(tars)} shards, {mb:,.1f} MB of tars, {args.rows:,} rows; removed {report.removed_rows} rows "
          f"({report.removed_members} members) from {report.rewritten} shards, {report.copied} copied as is")
    print(f"{'job':<24}{'seconds':>10}{'MB/s':>10}{'x cp':>8}")
    for name, secs in results.items():
        print(f"{name:<24}{secs:>10.2f}{mb / secs:>10.0f}{secs / results['cp']:>8.1f}")


if __name__ == "__main__":
    main()
