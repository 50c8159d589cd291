"""Benchmark ``relake diff`` against polars doing the same join directly. Run by hand, not by pytest:

    python bench/bench_diff.py --rows 10000000 --edits 30000 --memory-limit 1GB --work /tmp/relake-bench

Writes a LAION-like v1 (relake.synth.synth_original), derives v2 with DuckDB (removed rows, added rows,
changed captions; re-sharded and re-ordered), then times each contender in its own child process and prints
a markdown table: wall time, rows/s (rows of A + B over wall time) and the child's peak RSS.
Contenders: relake keyed (SAMPLE_ID), keyed on a STRUCT key (URL+TEXT), keyless, keyed with --out parquet,
lake versions with equal manifests (bucket skip), and polars keyed / keyless, in memory, unlimited.
The generated data is kept in --work and reused when it is already there with the same parameters.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import duckdb

# v2 from v1, in one statement: drop 1/3 of the edits, change the caption of 1/3, add 1/3 (fresh ids),
# ordered by a hash so every shard of v2 mixes rows of every shard of v1.
V2_SQL = """
COPY (
    WITH v1 AS (SELECT * FROM read_parquet($v1)),
    kept AS (
        SELECT * REPLACE (CASE WHEN hash(SAMPLE_ID, 2) % $period = 0 THEN TEXT || ' (edited)' ELSE TEXT END AS TEXT)
        FROM v1
        WHERE hash(SAMPLE_ID, 1) % $period <> 0
    ),
    added AS (
        SELECT * REPLACE (-1 - SAMPLE_ID AS SAMPLE_ID, URL || '?copy' AS URL)
        FROM v1
        WHERE hash(SAMPLE_ID, 3) % $period = 0
    )
    SELECT * FROM (SELECT * FROM kept UNION ALL SELECT * FROM added) ORDER BY hash(SAMPLE_ID, 4)
) TO $out (FORMAT parquet, FILE_SIZE_BYTES '64MB', FILENAME_PATTERN 'part-{i}')
"""


def _generate(work: Path, rows: int, edits: int, shards: int, seed: int) -> tuple[Path, Path]:
    v1, v2 = work / "v1", work / "v2"
    stamp = work / "params.json"
    params = {"rows": rows, "edits": edits, "shards": shards, "seed": seed}
    if stamp.is_file() and json.loads(stamp.read_text()) == params:
        return v1, v2
    import shutil

    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    from relake.synth import synth_original

    t0 = time.perf_counter()
    synth_original(v1, rows, shards, seed)
    print(f"# v1: {rows:,} rows in {shards} shards, {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    t0 = time.perf_counter()
    # each of the three edit kinds hits ~edits/3 rows (ids are unique, hash() spreads them evenly)
    period = max(1, rows * 3 // max(edits, 1))
    con = duckdb.connect(config={"memory_limit": "4GB"})
    con.execute("SET enable_progress_bar = false")
    # DuckDB hash() differs between versions; only the edit counts matter, and they are measured, not assumed.
    con.execute(V2_SQL, {"v1": str(v1 / "*.parquet"), "period": period, "out": str(v2)})
    con.close()
    print(f"# v2: {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    stamp.write_text(json.dumps(params))
    return v1, v2


def _ingest(work: Path, v1: Path) -> Path:
    """A lake with v1 ingested twice (same files, so equal manifests): diff of equal versions via buckets."""
    lake_root = work / "lake"
    from relake.ingest import ingest_version
    from relake.lake import Lake

    lk = Lake.at(lake_root)
    for name in ("v1", "v1-again"):
        if not lk.has_version(name):
            ingest_version(lk, name, [str(v1)])
    return lake_root


# ------------------------------------------------------------------------------------------ child tasks


def _child(task: str, args: dict[str, Any]) -> dict[str, Any]:
    if task.startswith("relake"):
        from relake.diff import diff_versions
        from relake.lake import Lake

        s = diff_versions(Lake.at(args["lake"]), args["a"], args["b"], key=args.get("key"),
                          keyless=args.get("keyless", False), out=args.get("out"),
                          memory_limit=args["memory_limit"])
        return {"added": s.added, "removed": s.removed, "changed": s.changed, "rows": s.rows_a + s.rows_b,
                "mode": s.mode, "buckets": s.buckets}
    import polars as pl

    a = pl.scan_parquet(str(Path(args["a"]) / "*.parquet"))
    b = pl.scan_parquet(str(Path(args["b"]) / "*.parquet"))
    if task == "polars-keyed":
        cols = [c for c in a.collect_schema().names() if c != "SAMPLE_ID"]
        j = a.join(b, on="SAMPLE_ID", how="full", suffix="_b", coalesce=False)
        differs = pl.any_horizontal([pl.col(c).ne_missing(pl.col(c + "_b")) for c in cols])
        res = j.select(
            added=pl.col("SAMPLE_ID").is_null().sum(),
            removed=pl.col("SAMPLE_ID_b").is_null().sum(),
            changed=(pl.col("SAMPLE_ID").is_not_null() & pl.col("SAMPLE_ID_b").is_not_null() & differs).sum(),
            rows=pl.len(),
        ).collect(engine="streaming").row(0, named=True)
        return dict(res)
    if task == "polars-keyless":
        # polars groups by a 64-bit row hash (collisions possible at LAION scale; relake groups by the row)
        ha = a.select(h=pl.struct(pl.all()).hash(seed=0)).group_by("h").agg(na=pl.len().cast(pl.Int64))
        hb = b.select(h=pl.struct(pl.all()).hash(seed=0)).group_by("h").agg(nb=pl.len().cast(pl.Int64))
        j = ha.join(hb, on="h", how="full", coalesce=True).with_columns(
            pl.col("na").fill_null(0), pl.col("nb").fill_null(0))
        res = j.select(
            removed=(pl.col("na") - pl.col("nb")).clip(lower_bound=0).sum(),
            added=(pl.col("nb") - pl.col("na")).clip(lower_bound=0).sum(),
        ).collect(engine="streaming").row(0, named=True)
        return dict(res)
    raise SystemExit(f"unknown task {task}")


def _peak_rss_mb() -> float:
    """This process's peak RSS. VmHWM belongs to the address space, so unlike ru_maxrss it does not inherit
    the parent's peak across fork + exec."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _run_child(task: str, args: dict[str, Any]) -> dict[str, Any]:
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, __file__, "--child", task, json.dumps(args)],
                          capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        return {"task": task, "error": proc.stderr.strip().splitlines()[-1:] or ["?"], "wall": wall}
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    out["wall"] = wall
    out["task"] = task
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=int, default=10_000_000)
    p.add_argument("--edits", type=int, default=30_000)
    p.add_argument("--shards", type=int, default=16)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--memory-limit", default="1GB")
    p.add_argument("--work", type=Path, default=Path("/tmp/relake-bench-diff"))
    p.add_argument("--only", default="", help="comma-separated task names to run (default: all)")
    p.add_argument("--child", nargs=2, metavar=("TASK", "ARGS"), help=argparse.SUPPRESS)
    ns = p.parse_args()
    if ns.child:
        t0 = time.perf_counter()
        result = _child(ns.child[0], json.loads(ns.child[1]))
        result["seconds"] = time.perf_counter() - t0
        result["maxrss_mb"] = _peak_rss_mb()
        ru = resource.getrusage(resource.RUSAGE_SELF)
        result["cpu_s"] = ru.ru_utime + ru.ru_stime
        print(json.dumps(result))
        return

    work = ns.work.absolute()
    v1, v2 = _generate(work, ns.rows, ns.edits, ns.shards, ns.seed)
    lake_root = str(work / "lake")
    common = {"lake": lake_root, "a": str(v1) + "/", "b": str(v2) + "/", "memory_limit": ns.memory_limit}
    tasks: list[tuple[str, str, dict[str, Any]]] = [
        ("relake-keyed", "relake keyed (SAMPLE_ID)", common),
        ("relake-keyed-struct", "relake keyed (STRUCT key SAMPLE_ID+hash)", {**common, "key": ["SAMPLE_ID", "hash"]}),
        ("relake-keyed-strings", "relake keyed (STRUCT key URL+TEXT+SAMPLE_ID)",
         {**common, "key": ["URL", "TEXT", "SAMPLE_ID"]}),
        ("relake-keyless", "relake keyless", {**common, "keyless": True}),
        ("relake-keyed-out", "relake keyed + --out parquet", {**common, "out": str(work / "diff.parquet")}),
        ("relake-equal-versions", "relake v1 vs v1 (lake versions, buckets)",
         {**common, "a": "v1", "b": "v1-again"}),
        ("polars-keyed", "polars keyed (full join, streaming)", common),
        ("polars-keyless", "polars keyless (row hash counts)", common),
    ]
    only = {t for t in ns.only.split(",") if t}
    if not only or "relake-equal-versions" in only:
        t0 = time.perf_counter()
        _ingest(work, v1)
        print(f"# ingest (sha256 + fingerprint of v1, twice if new): {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    con = duckdb.connect()
    rows_a, rows_b = (int(con.execute("SELECT sum(num_rows) FROM parquet_file_metadata($f)",
                                      {"f": str(p / "*.parquet")}).fetchone()[0]) for p in (v1, v2))
    con.close()
    rows_total = rows_a + rows_b
    print(f"\n{rows_a:,} rows in v1, {rows_b:,} in v2 ({ns.edits:,} edits), memory limit {ns.memory_limit} "
          f"for relake, {os.cpu_count()} CPUs; rows/s = (rows of v1 + v2) / wall\n")
    print("| contender | wall s | CPU s | rows/s | peak RSS MB | added | removed | changed |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for task, label, args in tasks:
        if only and task not in only:
            continue
        r = _run_child(task, args)
        if "error" in r:
            print(f"| {label} | {r['wall']:.1f} | | error: {r['error'][0][:80]} | | | | |", flush=True)
            continue
        print(f"| {label} | {r['wall']:.1f} | {r['cpu_s']:.1f} | {rows_total / r['wall']:,.0f} | "
              f"{r['maxrss_mb']:,.0f} | {r.get('added', '')} | {r.get('removed', '')} | {r.get('changed', '')} |",
              flush=True)


if __name__ == "__main__":
    main()
