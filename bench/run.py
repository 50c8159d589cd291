"""The benchmark of relake: every row operation against its practical floor and the obvious alternative.

    python bench/run.py --rows 2000000 [--repeat 3] [--out bench/results.md] [--work /tmp/relake-bench-run]
    python bench/run.py --scale 1M,3M [--repeat 1]          # build and keyed diff rows/s at each N (linearity)

Setup (untimed, reused when --work already holds the same parameters; --fresh to redo): ``relake synth`` of
N LAION-like rows in shards of ~1M rows (--shard-rows), ``relake ingest`` as version ``orig``, a URL blocklist of
~0.05% of the rows (``(hash mod 2000) = 7``, hash = LAION's mmh3 row key) imported with ``relake blocklist
add``, version ``v2`` built from it (the B side of the diffs), its public removal manifest (``relake
manifest``) and an img2dataset-style webdataset copy of the first --copy-rows rows of ``orig``
(``relake synth-copy``), which that manifest hits at the same ~0.05%.

Timed jobs, each in its own process (wall time = median of --repeat runs, interleaved; peak RSS = the child's
ru_maxrss from os.wait4, max over runs; the parent imports neither DuckDB nor polars, so the child's peak is
its own; every job runs on a warm page cache):

1. build (~0.05% removed): ``relake build`` (default audits) and ``--full-audit``; floor = DuckDB COPY of
   each shard (snappy, like the output), also one COPY of all shards; polars = anti-join on URL + sink_parquet
   per shard (raw URL equality: relake canonicalises every URL, polars does not).
2. keyed diff of orig vs v2 by SAMPLE_ID, ``relake diff --key SAMPLE_ID --memory-limit 1GB``; floor = DuckDB
   plain scan of both sides (count(*) and min() of every column, so nothing is pruned); polars = full join on
   SAMPLE_ID comparing every column (streaming engine, no memory limit).
3. keyless diff, ``relake diff --keyless --memory-limit 1GB``; floor = the same scan; polars = the same job,
   exact: counts per 64-bit row hash on both sides, then the whole rows of the hashes whose counts differ,
   grouped by every column and compared (what relake reports: which rows, with no collision able to hide
   one); also polars counts per row hash only (one pass, inexact: no rows, and a collision hides a change).
4. ``relake fingerprint orig``; floor = DuckDB plain scan of orig; polars = struct hash of every row (summed),
   and concat_str of every column + hash.
5. ``relake check`` / ``relake clean`` of the copy against the manifest; floor for check = DuckDB plain scan of
   the copy's parquet files, for clean = python tarfile re-pack of every tar (member by member, nothing
   dropped: a lower bound for a python clean); ``cp`` of the tars for scale.

rows/s = rows read over wall time: N for build and fingerprint, rows of A + rows of B for diffs, rows of the
copy for check/clean. Ratios: relake / floor and relake / polars (below 1 = relake is faster). The 1-minute load
average is recorded at the start of each job: other processes on the machine skew everything. Results are
cross-checked (removed counts of build, diffs and polars; affected rows of check and clean); a mismatch or a
failed job is reported and the exit code is 1. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from importlib.metadata import version as pkg_version
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()
REPO = HERE.parent.parent
RELAKE = str(Path(sys.executable).parent / "relake") if (Path(sys.executable).parent / "relake").exists() \
    else (shutil.which("relake") or "relake")
SEED = 7
DIFF_MEMORY = "1GB"
HOST_RE = r"^[A-Za-z][A-Za-z0-9+.-]*://(?:[^@/?#]*@)?([^:/?#]*)"  # the raw host, as url_host


class SetupError(Exception):
    pass


# ----------------------------------------------------------------------------------------- child jobs
# Run as `python bench/run.py --child NAME WORK`: each imports what it needs and prints one JSON line.


def _files(pattern: str) -> list[str]:
    import glob

    files = sorted(glob.glob(pattern))
    if not files:
        raise SystemExit(f"no files match {pattern}")
    return files


def child_duckdb_copy_per_shard(work: Path) -> dict[str, Any]:
    import duckdb

    out = work / "out" / "duckdb-copy"
    out.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    for i, f in enumerate(_files(str(work / "src" / "*.parquet"))):
        con.execute("COPY (SELECT * FROM read_parquet($f)) TO $o (FORMAT parquet, COMPRESSION snappy, "
                    "ROW_GROUP_SIZE 122880)", {"f": f, "o": str(out / f"part-{i:05d}.parquet")})
    return {}


def child_duckdb_copy_single(work: Path) -> dict[str, Any]:
    import duckdb

    (work / "out").mkdir(exist_ok=True)
    duckdb.connect().execute("COPY (SELECT * FROM read_parquet($f)) TO $o (FORMAT parquet, COMPRESSION snappy, "
                             "ROW_GROUP_SIZE 122880)",
                             {"f": _files(str(work / "src" / "*.parquet")), "o": str(work / "out" / "single.parquet")})
    return {}


def child_polars_anti_join(work: Path) -> dict[str, Any]:
    import polars as pl

    out = work / "out" / "polars-build"
    out.mkdir(parents=True, exist_ok=True)
    bl = pl.read_parquet(work / "urls.parquet").lazy()
    files = _files(str(work / "src" / "*.parquet"))
    for i, f in enumerate(files):
        pl.scan_parquet(f).join(bl, on="URL", how="anti").sink_parquet(out / f"part-{i:05d}.parquet",
                                                                      compression="snappy")
    rows_in = pl.scan_parquet(files).select(pl.len()).collect().item()
    rows_out = pl.scan_parquet(str(out / "*.parquet")).select(pl.len()).collect().item()
    return {"removed": rows_in - rows_out}


def _scan(patterns: list[str]) -> dict[str, Any]:
    import duckdb

    files = [f for p in patterns for f in _files(p)]
    row = duckdb.connect().execute(
        "SELECT count(*), min(COLUMNS(*)) FROM read_parquet($f, union_by_name = true)", {"f": files}).fetchone()
    assert row is not None
    return {"rows": int(row[0])}


def child_duckdb_scan_both(work: Path) -> dict[str, Any]:
    return _scan([str(work / "src" / "*.parquet"), str(work / "lake" / "versions" / "v2" / "data" / "*.parquet")])


def child_duckdb_scan_orig(work: Path) -> dict[str, Any]:
    return _scan([str(work / "src" / "*.parquet")])


def child_duckdb_scan_copy(work: Path) -> dict[str, Any]:
    return _scan([str(work / "copy" / "*.parquet")])


def _sides(work: Path) -> tuple[Any, Any]:
    import polars as pl

    return (pl.scan_parquet(str(work / "src" / "*.parquet")),
            pl.scan_parquet(str(work / "lake" / "versions" / "v2" / "data" / "*.parquet")))


def child_polars_keyed(work: Path) -> dict[str, Any]:
    return _polars_keyed_counts(*_sides(work))


def _polars_keyed_counts(a: Any, b: Any) -> dict[str, Any]:
    """polars' keyed diff of two lazy frames on SAMPLE_ID (a full join): rows added, removed and changed."""
    import polars as pl

    cols = [c for c in a.collect_schema().names() if c != "SAMPLE_ID"]
    j = a.join(b, on="SAMPLE_ID", how="full", suffix="_b", coalesce=False)
    differs = pl.any_horizontal([pl.col(c).ne_missing(pl.col(c + "_b")) for c in cols])
    res = j.select(
        added=pl.col("SAMPLE_ID").is_null().sum(),
        removed=pl.col("SAMPLE_ID_b").is_null().sum(),
        changed=(pl.col("SAMPLE_ID").is_not_null() & pl.col("SAMPLE_ID_b").is_not_null() & differs).sum(),
    ).collect(engine="streaming").row(0, named=True)
    return {k: int(v) for k, v in res.items()}


def child_polars_keyless(work: Path) -> dict[str, Any]:
    import polars as pl

    a, b = _sides(work)
    ha = a.select(h=pl.struct(pl.all()).hash(seed=0)).group_by("h").agg(na=pl.len().cast(pl.Int64))
    hb = b.select(h=pl.struct(pl.all()).hash(seed=0)).group_by("h").agg(nb=pl.len().cast(pl.Int64))
    j = ha.join(hb, on="h", how="full", coalesce=True).with_columns(pl.col("na").fill_null(0),
                                                                    pl.col("nb").fill_null(0))
    res = j.select(
        removed=(pl.col("na") - pl.col("nb")).clip(lower_bound=0).sum(),
        added=(pl.col("nb") - pl.col("na")).clip(lower_bound=0).sum(),
    ).collect(engine="streaming").row(0, named=True)
    return {k: int(v) for k, v in res.items()}


def child_polars_keyless_exact(work: Path) -> dict[str, Any]:
    """The same job as relake's keyless diff: which rows differ, exactly (a hash collision cannot hide one).
    Pass 1 counts rows per 64-bit row hash on each side; pass 2 groups the whole rows of the hashes whose counts
    differ by every column, on both sides, and compares those counts."""
    import polars as pl

    a, b = _sides(work)
    cols = a.collect_schema().names()
    h = pl.struct(pl.all()).hash(seed=0)
    ha = a.select(h=h).group_by("h").agg(na=pl.len().cast(pl.Int64))
    hb = b.select(h=h).group_by("h").agg(nb=pl.len().cast(pl.Int64))
    cand = ha.join(hb, on="h", how="full", coalesce=True).with_columns(
        pl.col("na").fill_null(0), pl.col("nb").fill_null(0)).filter(pl.col("na") != pl.col("nb")).select(
        "h").collect(engine="streaming")["h"]
    ra = a.filter(h.is_in(cand.implode())).group_by(cols).agg(na=pl.len().cast(pl.Int64))
    rb = b.filter(h.is_in(cand.implode())).group_by(cols).agg(nb=pl.len().cast(pl.Int64))
    j = ra.join(rb, on=cols, how="full", coalesce=True, nulls_equal=True).with_columns(
        pl.col("na").fill_null(0), pl.col("nb").fill_null(0))
    res = j.select(
        removed=(pl.col("na") - pl.col("nb")).clip(lower_bound=0).sum(),
        added=(pl.col("nb") - pl.col("na")).clip(lower_bound=0).sum(),
    ).collect(engine="streaming").row(0, named=True)
    return {k: int(v) for k, v in res.items()}


def child_polars_hash_rows(work: Path) -> dict[str, Any]:
    import polars as pl

    lf = pl.scan_parquet(str(work / "src" / "*.parquet"))
    res = lf.select(h=pl.struct(pl.all()).hash(seed=0)).select(
        rows=pl.len(), s=pl.col("h").sum()).collect(engine="streaming").row(0, named=True)
    return {"rows": int(res["rows"])}


def child_polars_concat_hash(work: Path) -> dict[str, Any]:
    import polars as pl

    lf = pl.scan_parquet(str(work / "src" / "*.parquet"))
    row = pl.concat_str([pl.col(c).cast(pl.String).fill_null("\x00") for c in lf.collect_schema().names()],
                        separator="\x1f")
    res = lf.select(h=row.hash(seed=0)).select(rows=pl.len(), s=pl.col("h").sum()).collect(
        engine="streaming").row(0, named=True)
    return {"rows": int(res["rows"])}


def child_tarfile_repack(work: Path) -> dict[str, Any]:
    import tarfile

    out = work / "out" / "tarfile"
    out.mkdir(parents=True, exist_ok=True)
    members = 0
    for t in sorted((work / "copy").glob("*.tar")):
        with tarfile.open(t) as src, tarfile.open(out / t.name, "w", format=tarfile.PAX_FORMAT) as dst:
            for m in src:
                dst.addfile(m, src.extractfile(m))
                members += 1
    return {"members": members}


def child_cp_tars(work: Path) -> dict[str, Any]:
    out = work / "out" / "cp"
    out.mkdir(parents=True, exist_ok=True)
    for t in sorted((work / "copy").glob("*.tar")):
        shutil.copyfile(t, out / t.name)
    return {}


def _dv_facts(work: Path) -> dict[str, Any]:
    return dict(json.loads((work / "dv.json").read_text()))


def child_polars_rules(work: Path) -> dict[str, Any]:
    """The build's three rules in polars, raw (no canonical URLs): anti-join on URL, host (regex) or a parent
    domain in the domain list, the `where` predicate; kept rows written per shard (snappy)."""
    import polars as pl

    f = _dv_facts(work)
    out = work / "out" / "polars-rules"
    out.mkdir(parents=True, exist_ok=True)
    bl = pl.read_parquet(work / "urls.parquet").lazy()
    host = pl.col("URL").str.extract(HOST_RE, 1).str.to_lowercase()
    in_domain = host.is_in(f["domains"]) | pl.any_horizontal([host.str.ends_with("." + d) for d in f["domains"]])
    files = _files(str(work / "src" / "*.parquet"))
    for i, src in enumerate(files):
        (pl.scan_parquet(src).join(bl, on="URL", how="anti")
         .filter(~in_domain.fill_null(False) & ~(pl.col("similarity") > f["similarity"]).fill_null(False))
         .sink_parquet(out / f"part-{i:05d}.parquet", compression="snappy"))
    rows_in = pl.scan_parquet(files).select(pl.len()).collect().item()
    rows_out = pl.scan_parquet(str(out / "*.parquet")).select(pl.len()).collect().item()
    return {"removed": rows_in - rows_out}


def child_duckdb_rule_columns(work: Path) -> dict[str, Any]:
    """DuckDB reading only the columns the rules need (URL, similarity), matching raw URLs, hosts and the predicate,
    writing the removed positions: the floor of a deletion-vector build."""
    import duckdb

    f = _dv_facts(work)
    (work / "out").mkdir(exist_ok=True)
    con = duckdb.connect()
    con.execute("CREATE TABLE doms AS SELECT unnest($d) AS d", {"d": f["domains"]})
    con.execute("""COPY (
        SELECT filename, file_row_number FROM (
            SELECT filename, file_row_number, URL, similarity,
                   lower(regexp_extract(URL, $re, 1)) AS host
            FROM read_parquet($files, filename = true, file_row_number = true)) AS r
        WHERE URL IN (SELECT URL FROM read_parquet($urls))
           OR host IN (SELECT d FROM doms) OR EXISTS (SELECT 1 FROM doms WHERE suffix(r.host, '.' || d))
           OR similarity > $sim
        ORDER BY filename, file_row_number) TO $out (FORMAT parquet)""",
                {"files": _files(str(work / "src" / "*.parquet")), "urls": str(work / "urls.parquet"),
                 "re": HOST_RE, "sim": f["similarity"], "out": str(work / "out" / "positions.parquet")})
    n = con.execute("SELECT count(*) FROM read_parquet($o)", {"o": str(work / "out" / "positions.parquet")})
    row = n.fetchone()
    return {"removed": int(row[0]) if row else -1}


def child_polars_keyed_release(work: Path) -> dict[str, Any]:
    """polars full join on SAMPLE_ID of orig's files and v2 as published (materialised, whatever its storage)."""
    import polars as pl

    return _polars_keyed_counts(pl.scan_parquet(str(work / "src" / "*.parquet")),
                                pl.scan_parquet(str(work / "out" / "release-v2" / "data" / "*.parquet")))


def child_relake_url_cache(work: Path) -> dict[str, Any]:
    """What the URL cache costs: computing it for every shard of orig (what ingest does after publishing)."""
    from relake.db import connect
    from relake.lake import Lake
    from relake.urlcache import ensure_url_caches

    lake = Lake(work / "lake")
    v = lake.load_version("orig")
    assert v.roles.url is not None
    with connect(lake) as db:
        got = ensure_url_caches(lake, db, v.shards, [v.shard_path(lake.version_dir("orig"), s) for s in v.shards],
                                v.roles.url, hashed=True)
    assert got is not None
    return {"built": got.built, "bytes": sum(f.stat().st_size for f in got.files)}


CHILDREN = {n[len("child_"):]: f for n, f in dict(globals()).items() if n.startswith("child_")}


# --------------------------------------------------------------------------------------------- running


@dataclass
class Job:
    name: str  # unique id
    label: str
    argv: list[str]
    clear: list[str] = field(default_factory=list)  # paths under work removed before each run
    ok_codes: tuple[int, ...] = (0,)
    parse: str = "json"  # "json": last JSON document on stdout; "none"


@dataclass
class Run:
    wall: float
    rss_mb: float
    load: float
    result: dict[str, Any]


@dataclass
class Outcome:
    job: Job
    runs: list[Run] = field(default_factory=list)
    error: str | None = None

    @property
    def wall(self) -> float:
        return statistics.median(r.wall for r in self.runs)

    @property
    def rss(self) -> float:
        return max(r.rss_mb for r in self.runs)

    @property
    def load(self) -> float:
        return statistics.median(r.load for r in self.runs)

    @property
    def result(self) -> dict[str, Any]:
        return self.runs[-1].result if self.runs else {}


def child_job(name: str, label: str, work: Path, clear: list[str] | None = None) -> Job:
    return Job(name, label, [sys.executable, str(HERE), "--child", name, str(work)], clear or [])


def relake_job(name: str, label: str, work: Path, args: list[str], clear: list[str] | None = None,
               ok_codes: tuple[int, ...] = (0,)) -> Job:
    return Job(name, label, [RELAKE, "--lake", str(work / "lake"), *args, "--json"], clear or [], ok_codes)


def _last_json(text: str) -> dict[str, Any]:
    text = text.strip()
    if not text:
        return {}
    try:
        out = json.loads(text)
        return out if isinstance(out, dict) else {}
    except json.JSONDecodeError:
        pass
    for line in reversed(text.splitlines()):
        try:
            out = json.loads(line)
            return out if isinstance(out, dict) else {}
        except json.JSONDecodeError:
            continue
    return {}


def run_once(job: Job, work: Path, timeout: float, log_dir: Path, i: int) -> Run:
    for c in job.clear:
        p = work / c
        if p.is_dir():
            shutil.rmtree(p)
        elif p.exists():
            p.unlink()
    log_dir.mkdir(parents=True, exist_ok=True)
    out_path, err_path = log_dir / f"{job.name}.{i}.out", log_dir / f"{job.name}.{i}.err"
    load = os.getloadavg()[0]
    with out_path.open("wb") as out, err_path.open("wb") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(job.argv, stdout=out, stderr=err, stdin=subprocess.DEVNULL, cwd=work)
        timer = threading.Timer(timeout, proc.kill)
        timer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            timer.cancel()
        wall = time.perf_counter() - start
    code = os.waitstatus_to_exitcode(status)
    proc.returncode = code  # reaped by wait4 already
    if code not in job.ok_codes:
        tail = err_path.read_text(errors="replace").strip().splitlines()[-3:]
        why = "timed out" if code < 0 and wall >= timeout else f"exit {code}"
        raise RuntimeError(f"{why}: {' | '.join(tail) or '(no stderr)'} (logs: {err_path})")
    result = _last_json(out_path.read_text(errors="replace")) if job.parse == "json" else {}
    return Run(wall, usage.ru_maxrss / 1024, load, result)


def run_jobs(jobs: list[Job], work: Path, repeat: int, timeout: float) -> dict[str, Outcome]:
    outcomes = {j.name: Outcome(j) for j in jobs}
    for i in range(repeat):
        for j in jobs:
            o = outcomes[j.name]
            if o.error:
                continue
            print(f"  [{i + 1}/{repeat}] {j.label} ...", end="", flush=True)
            try:
                r = run_once(j, work, timeout, work / "logs", i)
            except (RuntimeError, OSError) as exc:
                o.error = str(exc)
                print(f" FAILED: {exc}", flush=True)
                continue
            o.runs.append(r)
            print(f" {r.wall:.2f} s, {r.rss_mb:,.0f} MB, load {r.load:.2f}", flush=True)
    return outcomes


# ----------------------------------------------------------------------------------------------- setup


def _step(what: str, argv: list[str], cwd: Path) -> str:
    t = time.perf_counter()
    p = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, stdin=subprocess.DEVNULL, check=False)
    if p.returncode != 0:
        tail = "\n    ".join(p.stderr.strip().splitlines()[-8:])
        raise SetupError(f"setup step '{what}' failed (exit {p.returncode}): {' '.join(argv)}\n    {tail}")
    print(f"  setup: {what}: {time.perf_counter() - t:.1f} s", flush=True)
    return p.stdout


PICK_BLOCKLIST = """
import duckdb, sys
src, out = sys.argv[1], sys.argv[2]
con = duckdb.connect()
con.execute("SET enable_progress_bar = false")
con.execute("COPY (SELECT DISTINCT URL FROM read_parquet($f) "
            "WHERE URL IS NOT NULL AND ((hash % 2000) + 2000) % 2000 = 7 ORDER BY URL) TO $o (FORMAT parquet)",
            {"f": src + '/*.parquet', "o": out})
print(con.execute("SELECT count(*) FROM read_parquet($o)", {"o": out}).fetchone()[0])
"""

COPY_SUBSET = """
import duckdb, glob, os, sys
src, out, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
os.makedirs(out, exist_ok=True)
duckdb.connect().execute("COPY (SELECT * FROM read_parquet($f) LIMIT $n) TO $o (FORMAT parquet, COMPRESSION snappy)",
                         {"f": sorted(glob.glob(src + '/*.parquet')), "n": n, "o": out + '/part-00000.parquet'})
"""


def setup(work: Path, rows: int, shard_rows: int, copy_rows: int, fresh: bool) -> dict[str, Any]:
    # format 2: ingest records whether the id column is a key (stats.keys), which the ancestor diff relies on
    params = {"rows": rows, "shard_rows": shard_rows, "copy_rows": copy_rows, "seed": SEED, "format": 2}
    stamp = work / "setup.json"
    if not fresh and stamp.is_file():
        saved = json.loads(stamp.read_text())
        if saved.get("params") == params:
            print(f"  setup: reusing {work}", flush=True)
            return dict(saved["facts"])
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    lake = ["--lake", str(work / "lake")]
    shards = max(1, math.ceil(rows / shard_rows))
    _step(f"synth {rows:,} rows, {shards} shards", [RELAKE, "synth", "src", "--rows", str(rows), "--shards",
                                                    str(shards), "--seed", str(SEED)], work)
    _step("ingest orig", [RELAKE, *lake, "ingest", "orig", "src"], work)
    n_urls = int(_step("pick blocklist", [sys.executable, "-c", PICK_BLOCKLIST, "src", "urls.parquet"], work).strip())
    _step("blocklist add", [RELAKE, *lake, "blocklist", "add", "urls", "urls.parquet", "--kind", "url",
                            "--column", "URL"], work)
    built = _last_json(_step("build v2", [RELAKE, *lake, "build", "v2", "--base", "orig", "--blocklist", "urls",
                                          "--category", "safety", "--json"], work))
    facts: dict[str, Any] = {"rows": rows, "shards": shards, "blocklist_urls": n_urls,
                             "removed": int(built["removed"]), "rows_v2": int(built["rows"]),
                             "src_mb": sum(p.stat().st_size for p in (work / "src").glob("*.parquet")) / 1e6}
    if copy_rows > 0:
        _step("manifest orig -> v2", [RELAKE, *lake, "manifest", "orig", "v2", "--out", "manifest"], work)
        _step(f"copy subset ({copy_rows:,} rows)", [sys.executable, "-c", COPY_SUBSET, "src", "copy-src",
                                                    str(copy_rows)], work)
        info = _last_json(_step("synth-copy", [RELAKE, *lake, "synth-copy", "copy-src/", "copy", "--shard-size",
                                               "10000", "--seed", "1", "--json"], work))
        facts.update(copy_rows=int(info["rows"]), copy_shards=int(info["shards"]),
                     copy_tar_mb=sum(p.stat().st_size for p in (work / "copy").glob("*.tar")) / 1e6)
    stamp.write_text(json.dumps({"params": params, "facts": facts}, indent=1))
    return facts


# ------------------------------------------------------------------------------------------- the tasks


@dataclass
class Task:
    title: str
    rows: int
    jobs: list[str]  # job names shown in this task's table, relake ones first
    relake: list[str]
    floor: str
    polars: str | None = None
    polars_also: str | None = None  # a second polars baseline, shown after the first in the ratio column


def full_plan(work: Path, facts: dict[str, Any]) -> tuple[list[Job], list[Task]]:
    n, n2 = facts["rows"], facts["rows"] + facts["rows_v2"]
    rule = ["--base", "orig", "--blocklist", "urls", "--category", "safety"]
    jobs = [
        Job("relake-startup", "relake --version (CLI start-up)", [RELAKE, "--version"], parse="none"),
        relake_job("relake-build", "relake build", work, ["build", "bench-build", *rule],
                   ["lake/versions/bench-build"]),
        relake_job("relake-build-full", "relake build --full-audit", work,
                   ["build", "bench-build-full", *rule, "--full-audit"], ["lake/versions/bench-build-full"]),
        child_job("duckdb_copy_per_shard", "DuckDB COPY per shard", work, ["out/duckdb-copy"]),
        child_job("duckdb_copy_single", "DuckDB COPY all shards to one file", work, ["out/single.parquet"]),
        child_job("polars_anti_join", "polars anti-join + sink_parquet per shard", work, ["out/polars-build"]),
        relake_job("relake-diff-keyed", f"relake diff --key SAMPLE_ID --memory-limit {DIFF_MEMORY}", work,
                   ["diff", "orig", "v2", "--key", "SAMPLE_ID", "--memory-limit", DIFF_MEMORY]),
        child_job("duckdb_scan_both", "DuckDB plain scan of A and B", work),
        child_job("polars_keyed", "polars full join on SAMPLE_ID", work),
        relake_job("relake-diff-keyless", f"relake diff --keyless --memory-limit {DIFF_MEMORY}", work,
                   ["diff", "orig", "v2", "--keyless", "--memory-limit", DIFF_MEMORY]),
        child_job("polars_keyless_exact", "polars exact: counts per row hash, then whole rows of differing hashes",
                  work),
        child_job("polars_keyless", "polars counts per row hash only (inexact)", work),
        relake_job("relake-fingerprint", "relake fingerprint", work, ["fingerprint", "orig"]),
        child_job("duckdb_scan_orig", "DuckDB plain scan", work),
        child_job("polars_hash_rows", "polars struct hash of rows", work),
        child_job("polars_concat_hash", "polars concat_str + hash", work),
    ]
    tasks = [
        Task("build (0.05% removed)", n, [j.name for j in jobs[1:6]], ["relake-build", "relake-build-full"],
             "duckdb_copy_per_shard", "polars_anti_join"),
        Task("keyed diff (orig vs v2)", n2, ["relake-diff-keyed", "duckdb_scan_both", "polars_keyed"],
             ["relake-diff-keyed"], "duckdb_scan_both", "polars_keyed"),
        Task("keyless diff (orig vs v2)", n2,
             ["relake-diff-keyless", "duckdb_scan_both", "polars_keyless_exact", "polars_keyless"],
             ["relake-diff-keyless"], "duckdb_scan_both", "polars_keyless_exact", "polars_keyless"),
        Task("fingerprint (orig)", n, ["relake-fingerprint", "duckdb_scan_orig", "polars_hash_rows",
                                       "polars_concat_hash"], ["relake-fingerprint"], "duckdb_scan_orig",
             "polars_hash_rows"),
    ]
    if facts.get("copy_rows"):
        jobs += [
            relake_job("relake-check", "relake check --manifest", work, ["check", "copy", "--manifest", "manifest"],
                       ok_codes=(0, 1)),
            child_job("duckdb_scan_copy", "DuckDB plain scan of the copy's parquet", work),
            relake_job("relake-clean", "relake clean --manifest", work,
                       ["clean", "copy", "--out", "out/clean", "--manifest", "manifest"], ["out/clean"]),
            child_job("tarfile_repack", "python tarfile re-pack of every tar", work, ["out/tarfile"]),
            child_job("cp_tars", "cp of every tar", work, ["out/cp"]),
        ]
        c = facts["copy_rows"]
        tasks += [
            Task(f"check of a webdataset copy ({facts['copy_tar_mb']:,.0f} MB of tars)", c,
                 ["relake-check", "duckdb_scan_copy"], ["relake-check"], "duckdb_scan_copy"),
            Task("clean of the same copy", c, ["relake-clean", "tarfile_repack", "cp_tars"], ["relake-clean"],
                 "tarfile_repack"),
        ]
    return jobs, tasks


def cross_check(o: dict[str, Outcome], facts: dict[str, Any]) -> list[str]:
    """Problems: counts that should agree and do not."""
    bad: list[str] = []
    removed = facts["removed"]

    def got(name: str, *path: str) -> Any:
        r: Any = o[name].result if name in o and o[name].runs else None
        for p in path:
            r = r.get(p) if isinstance(r, dict) else None
        return r

    for name, path, want in [
        ("relake-build", ("removed",), removed), ("relake-build-full", ("removed",), removed),
        ("relake-diff-keyed", ("rows", "removed"), removed), ("relake-diff-keyed", ("rows", "added"), 0),
        ("relake-diff-keyless", ("rows", "removed"), removed), ("relake-fingerprint", ("rows",), facts["rows"]),
        ("polars_keyed", ("removed",), removed), ("polars_keyless", ("removed",), removed),
        ("polars_keyless_exact", ("removed",), removed),
        ("duckdb_scan_both", ("rows",), facts["rows"] + facts["rows_v2"]),
        ("polars_hash_rows", ("rows",), facts["rows"]),
    ]:
        v = got(name, *path)
        if v is not None and v != want:
            bad.append(f"{name} {'.'.join(path)} = {v}, expected {want}")
    pa = got("polars_anti_join", "removed")
    if pa is not None and pa != removed:  # raw vs canonical URL equality may differ: a note, not a failure
        print(f"  note: polars anti-join (raw URL) removed {pa}, relake (canonical URL) {removed}")
    ca, cl = got("relake-check", "affected"), got("relake-clean", "removed_rows")
    if ca is not None and cl is not None and ca != cl:
        bad.append(f"relake check found {ca} affected rows, clean removed {cl}")
    if ca == 0:
        bad.append("relake check found no affected row: the copy/manifest setup is wrong")
    return bad


# ---------------------------------------------------------------------------------------------- report


def machine() -> dict[str, str]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass

    def ver(p: str) -> str:
        try:
            return pkg_version(p)
        except Exception:
            return "?"

    rev = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                         check=False).stdout.strip() or "?"
    dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--", "src", "queries"],
                           capture_output=True, text=True, check=False).stdout.strip()
    return {
        "cores": str(os.cpu_count()),
        "ram": f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB",
        "cpu": cpu,
        "python": platform.python_version(),
        "duckdb": ver("duckdb"),
        "polars": ver("polars"),
        "relake": f"{ver('relake')} @ {rev}{' (+uncommitted src)' if dirty else ''}",
    }


def _ratio(a: Outcome | None, b: Outcome | None) -> str:
    if a is None or b is None or not a.runs or not b.runs:
        return ""
    return f"{a.wall / b.wall:.2f}×"


def header(m: dict[str, str], loads: tuple[float, float], repeat: int) -> list[str]:
    return [
        f"Machine: {m['cores']} cores ({m['cpu']}), {m['ram']} RAM; python {m['python']}, DuckDB {m['duckdb']}, "
        f"polars {m['polars']}, relake {m['relake']}.",
        f"Load average (1 min) {loads[0]:.2f} at start, {loads[1]:.2f} at end; wall = median of {repeat} run(s), "
        "peak RSS = max over runs, `load` = 1-min load average when the job started.",
    ]


def full_report(args: argparse.Namespace, m: dict[str, str], facts: dict[str, Any], tasks: list[Task],
                o: dict[str, Outcome], loads: tuple[float, float]) -> str:
    lines = [f"# relake benchmark, N = {facts['rows']:,} rows", ""]
    lines += header(m, loads, args.repeat)
    lines += [
        f"Data: {facts['rows']:,} rows in {facts['shards']} shards ({facts['src_mb']:,.0f} MB snappy parquet); "
        f"blocklist of {facts['blocklist_urls']:,} URLs removes {facts['removed']:,} rows "
        f"({100 * facts['removed'] / facts['rows']:.3f}%)"
        + (f"; copy: {facts['copy_rows']:,} rows in {facts['copy_shards']} webdataset shards, "
           f"{facts['copy_tar_mb']:,.0f} MB of tars." if facts.get("copy_rows") else "."),
    ]
    st = o.get("relake-startup")
    if st is not None and st.runs:
        lines.append(f"relake CLI start-up (`relake --version`): {st.wall:.2f} s, {st.rss:,.0f} MB; "
                     "included in every relake wall time below.")
    lines += [
        "",
        "| task | job | wall s | rows/s | peak RSS MB | load | vs floor | vs polars |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for t in tasks:
        for name in t.jobs:
            oc = o[name]
            role = " (floor)" if name == t.floor else " (polars)" if name == t.polars else ""
            label = f"**{oc.job.label}**" if name in t.relake else oc.job.label + role
            if not oc.runs:
                lines.append(f"| {t.title} | {label} | failed | | | | | |")
                continue
            vs_floor = _ratio(oc, o.get(t.floor)) if name != t.floor else ""
            vs_polars = _ratio(oc, o.get(t.polars)) if t.polars and name in t.relake else ""
            if vs_polars and t.polars_also and o[t.polars_also].runs:
                vs_polars += f" ({_ratio(oc, o[t.polars_also])} of {t.polars_also})"
            lines.append(f"| {t.title} | {label} | {oc.wall:.2f} | {t.rows / oc.wall:,.0f} | {oc.rss:,.0f} | "
                         f"{oc.load:.1f} | {vs_floor} | {vs_polars} |")
    lines += ["", "rows/s: N rows for build and fingerprint, rows of A + B for diffs, rows of the copy for "
              "check/clean. vs floor / vs polars: wall-time ratio (relake ÷ other; below 1 = relake faster).", ""]
    errors = [f"{oc.job.label}: {oc.error}" for oc in o.values() if oc.error]
    if errors:
        lines += ["Failures:", ""] + [f"- {e}" for e in errors] + [""]
    return "\n".join(lines)


def parse_count(s: str) -> int:
    s = s.strip().upper().replace("_", "")
    mult = {"K": 1_000, "M": 1_000_000, "G": 1_000_000_000}.get(s[-1:], 1)
    return int(float(s[:-1] if mult > 1 else s) * mult)


def ratios_summary(tasks: list[Task], o: dict[str, Outcome]) -> list[str]:
    out = []
    for t in tasks:
        for r in t.relake:
            if not o[r].runs:
                continue
            parts = [f"{_ratio(o[r], o.get(t.floor))} of {o[t.floor].job.label}"] if o[t.floor].runs else []
            for other in (t.polars, t.polars_also):
                if other and o[other].runs:
                    parts.append(f"{_ratio(o[r], o[other])} of {o[other].job.label}")
            out.append(f"  {o[r].job.label}: {o[r].wall:.2f} s = " + ", ".join(parts))
    return out


def main_full(args: argparse.Namespace) -> int:
    work: Path = args.work.absolute() / f"n{args.rows}"
    print(f"# setup in {work}")
    facts = setup(work, args.rows, args.shard_rows, min(args.copy_rows, args.rows), args.fresh)
    jobs, tasks = full_plan(work, facts)
    if args.only:
        keep = {x for x in args.only.split(",") if x}
        jobs = [j for j in jobs if j.name in keep]
        tasks = [t for t in tasks if t.relake[0] in keep]
    print(f"# {len(jobs)} jobs × {args.repeat}")
    m, load0 = machine(), os.getloadavg()[0]  # the source tree's state at the start
    outcomes = run_jobs(jobs, work, args.repeat, args.timeout)
    load1 = os.getloadavg()[0]
    outcomes_all = {**{j: Outcome(Job(j, j, [])) for t in tasks for j in t.jobs}, **outcomes}
    report = full_report(args, m, facts, tasks, outcomes_all, (load0, load1))
    problems = cross_check(outcomes, facts)
    if problems:
        report += "\nCross-check problems:\n\n" + "".join(f"- {p}\n" for p in problems)
    print("\n" + report)
    print("Ratios (relake wall ÷ other):")
    print("\n".join(ratios_summary(tasks, outcomes_all)))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(report + "\n")
        print(f"\nwrote {args.out}")
    return 1 if problems or any(oc.error for oc in outcomes.values()) else 0


def main_scale(args: argparse.Namespace) -> int:
    sizes = [parse_count(s) for s in args.scale.split(",") if s.strip()]
    m, load0 = machine(), os.getloadavg()[0]
    rows_out: list[tuple[int, dict[str, Outcome], dict[str, Any]]] = []
    failed = False
    for n in sizes:
        work = args.work.absolute() / f"n{n}"
        print(f"# N = {n:,}: setup in {work}")
        facts = setup(work, n, args.shard_rows, 0, args.fresh)
        build = ["build", "bench-build", "--base", "orig", "--blocklist", "urls", "--category", "safety"]
        jobs = [
            relake_job("relake-build", "relake build", work, build, ["lake/versions/bench-build"]),
            relake_job("relake-diff-keyed", "relake diff --key SAMPLE_ID", work,
                       ["diff", "orig", "v2", "--key", "SAMPLE_ID", "--memory-limit", DIFF_MEMORY]),
            child_job("duckdb_copy_per_shard", "DuckDB COPY per shard", work, ["out/duckdb-copy"]),
        ]
        o = run_jobs(jobs, work, args.repeat, args.timeout)
        failed |= any(x.error for x in o.values())
        rows_out.append((n, o, facts))
    load1 = os.getloadavg()[0]
    lines = ["# relake scaling: rows/s of build and keyed diff at each N", ""]
    lines += header(m, (load0, load1), args.repeat)
    lines += ["", "| N | shards | relake build s | build rows/s | build peak RSS MB | DuckDB COPY rows/s | "
              "keyed diff s | diff rows/s (A+B) | diff peak RSS MB | load |",
              "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    base: tuple[float, float] | None = None
    for n, o, facts in rows_out:
        b, d, c = o["relake-build"], o["relake-diff-keyed"], o["duckdb_copy_per_shard"]
        n2 = n + facts["rows_v2"]

        def cell(x: Outcome, rows: int) -> tuple[str, str, str]:
            return ("failed", "", "") if not x.runs else (f"{x.wall:.2f}", f"{rows / x.wall:,.0f}", f"{x.rss:,.0f}")

        bs, dsl = cell(b, n), cell(d, n2)
        lines.append(f"| {n:,} | {facts['shards']} | {bs[0]} | {bs[1]} | {bs[2]} | "
                     f"{(f'{n / c.wall:,.0f}' if c.runs else 'failed')} | {dsl[0]} | {dsl[1]} | {dsl[2]} | "
                     f"{statistics.median(r.load for x in o.values() for r in x.runs) if b.runs else 0:.1f} |")
        if b.runs and d.runs:
            rate = (n / b.wall, n2 / d.wall)
            base = base or rate
            print(f"  N={n:,}: build {rate[0]:,.0f} rows/s ({rate[0] / base[0]:.2f}× of the smallest N), "
                  f"keyed diff {rate[1]:,.0f} rows/s ({rate[1] / base[1]:.2f}×)")
    lines += ["", "Linear scaling = the same rows/s at every N."]
    report = "\n".join(lines)
    print("\n" + report)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(report + "\n")
        print(f"\nwrote {args.out}")
    return 1 if failed else 0


PICK_DV = """
import duckdb, json, sys
src, n, share, re_host = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
con = duckdb.connect()
con.execute("SET enable_progress_bar = false")
files = {"f": src + '/*.parquet'}
hosts = con.execute("SELECT lower(regexp_extract(URL, $re, 1)) AS h, count(*) AS c FROM read_parquet($f) "
                    "GROUP BY h HAVING h LIKE '%_._%' ORDER BY c, h", {**files, "re": re_host}).fetchall()
picked, total = [], 0
for h, c in hosts:
    if total >= n * share:
        break
    picked.append(h)
    total += c
sim = con.execute("SELECT quantile_disc(similarity, 0.99995) FROM read_parquet($f)", files).fetchone()[0]
print(json.dumps({"domains": picked, "domain_rows": total, "similarity": float(sim)}))
"""


def setup_dv(work: Path, rows: int, shard_rows: int, fresh: bool) -> dict[str, Any]:
    """setup() (synth, ingest, URL list, v2), then a domain list of the rarest hosts (~0.02% of the rows), a
    `where` threshold (~0.005%), and v2 published as a release (what polars' keyed diff reads)."""
    facts = setup(work, rows, shard_rows, 0, fresh)
    stamp = work / "dv.json"
    if stamp.is_file() and not fresh:
        return {**facts, **json.loads(stamp.read_text())}
    lake = ["--lake", str(work / "lake")]
    dv = _last_json(_step("pick domains and where", [sys.executable, "-c", PICK_DV, "src", str(rows), "0.0002",
                                                     HOST_RE], work))
    (work / "doms.txt").write_text("".join(d + "\n" for d in dv["domains"]))
    _step("blocklist add doms", [RELAKE, *lake, "blocklist", "add", "doms", "doms.txt", "--kind", "domain"], work)
    shutil.rmtree(work / "out" / "release-v2", ignore_errors=True)
    (work / "out").mkdir(exist_ok=True)
    _step("publish v2 (for polars)", [RELAKE, *lake, "publish", "v2", "out/release-v2"], work)
    dv["where"] = f"similarity > {dv['similarity']!r}"
    dv["orig_bytes"] = json.loads((work / "lake" / "versions" / "orig" / "version.json").read_text())["bytes"]
    stamp.write_text(json.dumps(dv, indent=1))
    return {**facts, **dv}


def _folder_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else 0


def dv_jobs(work: Path, facts: dict[str, Any]) -> tuple[list[Job], list[Job]]:
    """(jobs run without the URL cache, the other jobs); the cache job comes first and rebuilds the cache."""
    lake = [RELAKE, "--lake", str(work / "lake")]
    rules = ["--base", "orig", "--blocklist", "urls", "--blocklist", "doms", "--where", facts["where"]]
    plan = ["build", "plan", "--base", "orig", "--dry-run", "--blocklist"]
    nocache = [
        relake_job("plan-url-nocache", "relake build --dry-run, URL rule, no URL cache", work, [*plan, "urls"]),
        relake_job("plan-domain-nocache", "relake build --dry-run, domain rule, no URL cache", work,
                   [*plan, "doms"]),
    ]
    jobs = [
        child_job("relake_url_cache", "URL cache of orig (computed at ingest)", work, ["lake/url-cache"]),
        relake_job("build3", "relake build (URL + domain + where)", work, ["build", "b3", *rules],
                   ["lake/versions/b3"]),
        child_job("polars_rules", "polars: the 3 rules (raw URLs) + sink_parquet per shard", work,
                  ["out/polars-rules"]),
        child_job("duckdb_rule_columns", "DuckDB: only URL + similarity read, positions written", work,
                  ["out/positions.parquet"]),
        relake_job("plan-url", "relake build --dry-run, URL rule", work, [*plan, "urls"]),
        relake_job("plan-domain", "relake build --dry-run, domain rule", work, [*plan, "doms"]),
        relake_job("diff-keyed", f"relake diff orig v2 --key SAMPLE_ID --memory-limit {DIFF_MEMORY}", work,
                   ["diff", "orig", "v2", "--key", "SAMPLE_ID", "--memory-limit", DIFF_MEMORY], ok_codes=(0, 1)),
        child_job("polars_keyed_release", "polars full join on SAMPLE_ID (orig vs v2's release)", work),
        Job("publish", "relake publish v2", [*lake, "publish", "v2", "out/pub-bench"], ["out/pub-bench"],
            parse="none"),
        child_job("duckdb_copy_per_shard", "DuckDB COPY per shard", work, ["out/duckdb-copy"]),
    ]
    return nocache, jobs


def _r(o: dict[str, Outcome], a: str, b: str) -> str:
    return _ratio(o.get(a), o.get(b)) or "n/a"


def _wall(o: dict[str, Outcome], name: str) -> float:
    x = o.get(name)
    return x.wall if x is not None and x.runs else float("nan")


def main_dv(args: argparse.Namespace) -> int:
    sizes = [parse_count(x) for x in args.dv.split(",") if x.strip()]
    m, load0 = machine(), os.getloadavg()[0]
    lines = ["# relake issue 17: build in scan time, URL cache, derived versions, diff, publish", ""]
    summary: list[str] = []
    rates: list[tuple[int, float]] = []
    failed = False
    for n in sizes:
        work = args.work.absolute() / f"n{n}"
        print(f"# N = {n:,}: setup in {work}")
        facts = setup_dv(work, n, args.shard_rows, args.fresh)
        nocache, jobs = dv_jobs(work, facts)
        keep = {x for x in args.only.split(",") if x}  # --only JOB,...: those jobs alone (e.g. a side-by-side pair)
        first, nocache, rest = ([j for j in js if not keep or j.name in keep] for js in (jobs[:1], nocache, jobs[1:]))
        o = run_jobs(first, work, args.repeat, args.timeout)  # the cache first: every later job has it
        cache, off = work / "lake" / "url-cache", work / "lake" / "url-cache.off"
        if nocache:
            os.rename(cache, off)
            try:
                o.update(run_jobs(nocache, work, args.repeat, args.timeout))
            finally:
                os.rename(off, cache)
        o.update(run_jobs(rest, work, args.repeat, args.timeout))
        failed |= any(x.error for x in o.values())
        base_bytes = facts["orig_bytes"]
        derived = _folder_bytes(work / "lake" / "versions" / "b3")
        cache_bytes = _folder_bytes(cache)
        built = o.get("build3")
        removed = built.result.get("removed") if built is not None and built.runs else facts.get("removed")
        lines += [f"## N = {n:,} rows, {facts['shards']} shards ({base_bytes / 1e6:,.0f} MB); build removes "
                  f"{removed if removed is not None else '?':,} rows "
                  f"({100 * (removed or 0) / n:.3f}%): {facts['blocklist_urls']:,} URLs, {len(facts['domains'])} "
                  f"domains, `{facts['where']}`", "",
                  "| job | wall s | rows/s | peak RSS MB | load | result |", "|---|---:|---:|---:|---:|---|"]
        for name in [j.name for j in first + nocache + rest]:
            oc = o[name]
            res = {k: v for k, v in oc.result.items() if k in ("removed", "added", "changed", "built", "bytes",
                                                                 "url_cache")}
            lines.append(f"| {oc.job.label} | {oc.wall:.2f} | {n / oc.wall:,.0f} | {oc.rss:,.0f} | {oc.load:.1f} | "
                         f"{json.dumps(res)} |" if oc.runs else f"| {oc.job.label} | failed | | | | |")
        relake_rss = max((x.rss for name, x in o.items() if x.runs and not name.startswith(("polars", "duckdb"))),
                         default=0.0)
        ratios = [
            f"build ÷ polars rules + write: {_r(o, 'build3', 'polars_rules')} (goal ≤ 0.3×)",
            f"build ÷ DuckDB reading only the rules' columns: {_r(o, 'build3', 'duckdb_rule_columns')} (goal ≤ 1.5×)",
            f"domain rule ÷ URL rule (dry runs, URL cache): {_r(o, 'plan-domain', 'plan-url')} (goal ≤ 1.2×); "
            f"without the cache {_r(o, 'plan-domain-nocache', 'plan-url-nocache')}; URL rule cache ÷ no cache "
            f"{_r(o, 'plan-url', 'plan-url-nocache')}, domain rule {_r(o, 'plan-domain', 'plan-domain-nocache')}",
            f"derived version on disk ÷ base: {derived / base_bytes:.4f} ({derived / 1e6:,.1f} MB; goal ≤ 0.01)",
            f"URL cache ÷ base: {cache_bytes / base_bytes:.4f} ({cache_bytes / 1e6:,.1f} MB; goal ≤ 0.10); computing "
            f"it: {_wall(o, 'relake_url_cache'):.2f} s",
            f"keyed diff vs ancestor ÷ polars full join: {_r(o, 'diff-keyed', 'polars_keyed_release')} (goal ≤ 0.1×)",
            f"publish ÷ DuckDB per-shard COPY: {_r(o, 'publish', 'duckdb_copy_per_shard')} (goal ≤ 1.3×)",
            f"peak RSS, max over relake jobs: {relake_rss:,.0f} MB (goal ≤ 1024)",
        ]
        lines += ["", *[f"- {r}" for r in ratios], ""]
        summary += [f"N = {n:,}:", *[f"  {r}" for r in ratios]]
        if built is not None and built.runs:
            rates.append((n, n / built.wall))
    load1 = os.getloadavg()[0]
    lines[2:2] = [*header(m, (load0, load1), args.repeat), ""]
    if len(rates) > 1:
        flat = ", ".join(f"{n:,}: {r:,.0f} rows/s ({r / rates[0][1]:.2f}×)" for n, r in rates)
        lines.append(f"Build rows/s by N (flat = 1.00×): {flat}")
        summary.append(f"build rows/s by N: {flat}")
    report = "\n".join(lines)
    print("\n" + report + "\n\nRatios:\n" + "\n".join(summary))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(report + "\n")
        print(f"\nwrote {args.out}")
    return 1 if failed else 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=parse_count, default=2_000_000, help="N rows (2M, 500K, 10000000 ...)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--out", type=Path, default=None, help="write the markdown table here")
    ap.add_argument("--work", type=Path, default=Path("/tmp/relake-bench-run"))
    ap.add_argument("--shard-rows", type=parse_count, default=1_000_000, help="rows per synthetic shard")
    ap.add_argument("--copy-rows", type=parse_count, default=50_000,
                    help="rows of the img2dataset copy (~9 KB of tar each; 0 skips check/clean)")
    ap.add_argument("--scale", default="", help="comma-separated Ns, e.g. 1M,3M: build + keyed diff rows/s each")
    ap.add_argument("--dv", default="", help="comma-separated Ns, e.g. 10M,30M: issue 17's ratios at each N (build "
                    "with URL + domain + where rules, domain vs URL rule, derived bytes, keyed diff, publish)")
    ap.add_argument("--timeout", type=float, default=3600, help="seconds per job run")
    ap.add_argument("--fresh", action="store_true", help="regenerate the data even when --work has it")
    ap.add_argument("--only", default="", metavar="JOB,...", help="run only these jobs (their names in the logs), e.g. "
                    "--dv 30M --only publish,duckdb_copy_per_shard --repeat 5 for one side-by-side ratio")
    ap.add_argument("--child", nargs=2, metavar=("JOB", "WORK"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        name, work = args.child
        if name not in CHILDREN:
            raise SystemExit(f"unknown child job {name}")
        print(json.dumps(CHILDREN[name](Path(work))))
        return 0
    if args.repeat < 1:
        ap.error("--repeat must be at least 1")
    try:
        if args.dv:
            return main_dv(args)
        return main_scale(args) if args.scale else main_full(args)
    except SetupError as exc:
        print(f"\nError: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
