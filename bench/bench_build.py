"""Benchmark: `relake build` (0.05% removed) against the practical floor (a plain DuckDB COPY of the same
shards with the same compression) and the obvious alternative (polars: anti-join + write), in one run.

    python bench/bench_build.py --rows 10000000 --shards 20 [--work /tmp/relake-bench]

Each job runs in its own process; wall time and peak RSS (os.wait4) are reported, with ratios to the floor.
Not part of the test suite.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

JOBS = {
    "duckdb-copy-per-shard": """
import duckdb, glob, sys
files = sorted(glob.glob(sys.argv[1] + '/src/*.parquet'))
con = duckdb.connect()
import os; os.makedirs(sys.argv[1] + '/copy', exist_ok=True)
for i, f in enumerate(files):
    con.execute("COPY (SELECT * FROM read_parquet($f)) TO $o (FORMAT parquet, COMPRESSION snappy)",
                {"f": f, "o": f"{sys.argv[1]}/copy/part-{i:05d}.parquet"})
""",
    "duckdb-copy-single": """
import duckdb, glob, sys
files = sorted(glob.glob(sys.argv[1] + '/src/*.parquet'))
duckdb.connect().execute("COPY (SELECT * FROM read_parquet($f)) TO $o (FORMAT parquet, COMPRESSION snappy)",
                         {"f": files, "o": sys.argv[1] + '/copy-single.parquet'})
""",
    "polars-anti-join": """
import polars as pl, glob, sys, os
files = sorted(glob.glob(sys.argv[1] + '/src/*.parquet'))
bl = pl.read_csv(sys.argv[1] + '/urls.txt', has_header=False, new_columns=['URL'])
os.makedirs(sys.argv[1] + '/polars', exist_ok=True)
for i, f in enumerate(files):
    pl.scan_parquet(f).join(bl.lazy(), on='URL', how='anti').sink_parquet(
        f"{sys.argv[1]}/polars/part-{i:05d}.parquet", compression='snappy')
""",
    "relake-build": """
import sys
from pathlib import Path
from relake.lake import Lake
from relake.spec import parse_spec
from relake.build import build_version
spec = parse_spec(b'name = "bench-build"\\nbase = "orig"\\n'
                  b'[[rule]]\\nid = "urls"\\nblocklist = "urls"\\ncategory = "safety"\\n')
build_version(Lake(Path(sys.argv[1]) / 'lake'), spec)
""",
}


def run(code: str, work: Path) -> tuple[float, float]:
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", code, str(work)])
    _, status, usage = os.wait4(proc.pid, 0)
    secs = time.perf_counter() - start
    if status != 0:
        raise SystemExit(f"job failed with status {status}")
    return secs, usage.ru_maxrss / 1024


def prepare(work: Path, rows: int, shards: int) -> list[str]:
    """A fresh ``work`` folder: synthetic shards in src/, a lake with them ingested as orig, and a URL blocklist
    ``urls`` of 0.05% of the rows (also in urls.txt); returns the blocklisted URLs."""
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    subprocess.run(["relake", "synth", str(work / "src"), "--rows", str(rows), "--shards", str(shards),
                    "--seed", "7"], check=True, stdout=subprocess.DEVNULL)
    subprocess.run(["relake", "--lake", str(work / "lake"), "ingest", "orig", str(work / "src")], check=True,
                   stdout=subprocess.DEVNULL)
    import duckdb

    n_block = max(1, rows * 5 // 10_000)  # 0.05% of rows
    found = duckdb.connect().execute(
        "SELECT DISTINCT URL FROM read_parquet($f) WHERE URL IS NOT NULL AND hash % 2000 = 7 LIMIT $n",
        {"f": sorted(str(p) for p in (work / "src").glob("*.parquet")), "n": n_block},
    ).fetchall()
    urls = [str(u[0]) for u in found if "\n" not in u[0] and "," not in u[0]]
    (work / "urls.txt").write_text("".join(u + "\n" for u in urls))
    subprocess.run(["relake", "--lake", str(work / "lake"), "blocklist", "add", "urls", str(work / "urls.txt"),
                    "--kind", "url"], check=True, stdout=subprocess.DEVNULL)
    return urls


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=2_000_000)
    ap.add_argument("--shards", type=int, default=8)
    ap.add_argument("--work", type=Path, default=Path("/tmp/relake-bench-build"))
    ap.add_argument("--repeat", type=int, default=1)
    args = ap.parse_args()
    work: Path = args.work
    urls = prepare(work, args.rows, args.shards)
    results: dict[str, list[tuple[float, float]]] = {}
    for _ in range(args.repeat):
        for name, code in JOBS.items():
            for d in ("copy", "polars", "copy-single.parquet"):
                p = work / d
                shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)
            shutil.rmtree(work / "lake" / "versions" / "bench-build", ignore_errors=True)
            results.setdefault(name, []).append(run(code, work))
    floor = sorted(results["duckdb-copy-per-shard"])[len(results["duckdb-copy-per-shard"]) // 2][0]
    print(f"\n{args.rows:,} rows, {args.shards} shards, {len(urls):,} blocklisted URLs; "
          f"{os.cpu_count()} cores, {platform.machine()}, "
          f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB RAM\n")
    print("| job | wall s (median) | rows/s | peak RSS MB | vs DuckDB COPY per shard |")
    print("|---|---|---|---|---|")
    for name, rs in results.items():
        secs, rss = sorted(rs)[len(rs) // 2]
        print(f"| {name} | {secs:.2f} | {args.rows / secs:,.0f} | {rss:,.0f} | {secs / floor:.2f}× |")


if __name__ == "__main__":
    main()
