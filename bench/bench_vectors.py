"""Benchmark: derived versions as deletion vectors (issue 17), in one run, each job in its own process (wall time
and peak RSS from os.wait4):

- build (0.05% removed, a URL rule): relake's vector build and ``--materialize``, against polars' anti-join +
  write of the same files;
- disk: the derived version's bytes (deletes.parquet, removed.parquet, version.json) against its base's, and the
  vector's bytes per dropped row;
- publish (materialise the vector version) against DuckDB's per-shard COPY of the same rows;
- keyed diff of the version against its ancestor (``relake diff orig v --key SAMPLE_ID``) against polars' full
  join on the key.

    python bench/bench_vectors.py --rows 10000000 --shards 10 [--work /tmp/relake-bench-vectors]

Not part of the test suite.
"""

from __future__ import annotations

import argparse
import os
import platform
from pathlib import Path

from bench_build import JOBS as BUILD_JOBS
from bench_build import prepare, run

SPEC = 'name = "{name}"\\nbase = "orig"\\n[[rule]]\\nid = "urls"\\nblocklist = "urls"\\ncategory = "safety"\\n'

JOBS = {
    "relake-build (vector)": f"""
import sys
from pathlib import Path
from relake.lake import Lake
from relake.spec import parse_spec
from relake.build import build_version
build_version(Lake(Path(sys.argv[1]) / 'lake'), parse_spec(b'{SPEC.format(name="vec")}'))
""",
    "relake-build --materialize": f"""
import sys
from pathlib import Path
from relake.lake import Lake
from relake.spec import parse_spec
from relake.build import build_version
build_version(Lake(Path(sys.argv[1]) / 'lake'), parse_spec(b'{SPEC.format(name="mat")}'), materialize=True)
""",
    "polars anti-join + write": BUILD_JOBS["polars-anti-join"],
    "relake publish (vector)": """
import sys
from pathlib import Path
from relake.lake import Lake
from relake.publish import publish_release
publish_release(Lake(Path(sys.argv[1]) / 'lake'), 'vec', Path(sys.argv[1]) / 'release', min_crowd=1)
""",
    "duckdb COPY per shard (kept rows)": """
import duckdb, glob, sys, os
files = sorted(glob.glob(sys.argv[1] + '/polars/*.parquet'))
con = duckdb.connect()
os.makedirs(sys.argv[1] + '/copy', exist_ok=True)
for i, f in enumerate(files):
    con.execute("COPY (SELECT * FROM read_parquet($f)) TO $o (FORMAT parquet, COMPRESSION snappy)",
                {"f": f, "o": f"{sys.argv[1]}/copy/part-{i:05d}.parquet"})
""",
    "relake diff orig vec --key SAMPLE_ID": """
import sys
from pathlib import Path
from relake.lake import Lake
from relake.diff import diff_versions
diff_versions(Lake(Path(sys.argv[1]) / 'lake'), 'orig', 'vec', key=['SAMPLE_ID'], use_buckets=False)
""",
    "polars full join on SAMPLE_ID": """
import polars as pl, glob, sys
a = pl.scan_parquet(sorted(glob.glob(sys.argv[1] + '/src/*.parquet')))
b = pl.scan_parquet(sorted(glob.glob(sys.argv[1] + '/polars/*.parquet')))
cols = [c for c in a.collect_schema().names() if c != 'SAMPLE_ID']
j = a.join(b, on='SAMPLE_ID', how='full', suffix='_b', coalesce=True)
diff = j.filter(pl.any_horizontal([pl.col(c).ne_missing(pl.col(c + '_b')) for c in cols]))
print(diff.select(pl.len()).collect().item())
""",
}


def _bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=2_000_000)
    ap.add_argument("--shards", type=int, default=8)
    ap.add_argument("--work", type=Path, default=Path("/tmp/relake-bench-vectors"))
    args = ap.parse_args()
    work: Path = args.work
    urls = prepare(work, args.rows, args.shards)
    import pyarrow.parquet as pq

    results = {name: run(code, work) for name, code in JOBS.items()}

    base = _bytes(work / "src")
    vdir = work / "lake" / "versions" / "vec"
    deletes = vdir / "deletes.parquet"
    dropped = pq.ParquetFile(deletes).metadata.num_rows
    release_same = sorted(p.read_bytes() == q.read_bytes() for p, q in zip(
        sorted((work / "release" / "data").glob("*.parquet")),
        sorted((work / "lake" / "versions" / "mat" / "data").glob("*.parquet")), strict=True))
    print(f"\n{args.rows:,} rows, {args.shards} shards, {len(urls):,} blocklisted URLs, {dropped:,} rows dropped; "
          f"{os.cpu_count()} cores, {platform.machine()}, "
          f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB RAM, "
          f"load {os.getloadavg()[0]:.1f}\n")
    print("| job | wall s | rows/s | peak RSS MB |")
    print("|---|---|---|---|")
    for name, (secs, rss) in results.items():
        print(f"| {name} | {secs:.2f} | {args.rows / secs:,.0f} | {rss:,.0f} |")
    polars = results["polars anti-join + write"][0]
    print(f"\nbuild (vector) / polars anti-join + write: {results['relake-build (vector)'][0] / polars:.2f}×")
    print(f"build --materialize / polars: {results['relake-build --materialize'][0] / polars:.2f}×")
    print(f"publish / DuckDB COPY per shard: "
          f"{results['relake publish (vector)'][0] / results['duckdb COPY per shard (kept rows)'][0]:.2f}×")
    print(f"keyed diff vs ancestor / polars full join: "
          f"{results['relake diff orig vec --key SAMPLE_ID'][0] / results['polars full join on SAMPLE_ID'][0]:.2f}×")
    print(f"published shards byte-identical to --materialize: {all(release_same)}")
    print(f"\nbase {base:,} B; vector version {_bytes(vdir):,} B ({_bytes(vdir) / base:.4%} of base): "
          f"deletes.parquet {deletes.stat().st_size:,} B ({deletes.stat().st_size / max(dropped, 1):.2f} B per "
          f"dropped row; raw int64 would be 8), removed.parquet {(vdir / 'removed.parquet').stat().st_size:,} B; "
          f"--materialize: {_bytes(work / 'lake' / 'versions' / 'mat'):,} B")


if __name__ == "__main__":
    main()
