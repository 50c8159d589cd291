"""The key comparison of a keyed diff as map and reduce jobs on an engine (``relake diff --engine ray``).

The local keyed diff finds its differing keys with one FULL OUTER hash join on ``(k, hash(r), f)``
(``queries/diff/keyed_keys.sql``). Here that join is split by key bucket:

- **map**: one job per input file of A and of B, in its own single-threaded DuckDB. It reads its one file,
  conforms it to its side's columns and types (what the driver's multi-file read gives: a column missing from
  this file is NULL, a column typed otherwise in this file is cast), withholds the rows a sensitive rule
  removed (same anti-join as the driver), projects it with the very expressions of the local diff
  (``diff._key_expr``, ``diff._struct``, A's file index as ``f``) and writes ``k``, ``h = hash(r)``, ``f`` and
  the side as parquet partitioned by ``hash(k) & (P - 1)`` (``queries/diff/shuffle_map.sql``).
- **reduce**: one job per bucket reads both sides' rows of its bucket and writes the added, removed and
  candidate changed keys (``queries/diff/shuffle_reduce.sql``: the join of ``diff/keyed_keys`` restricted to
  one bucket; equal keys always land in the same bucket, so the union over buckets is the same set of keys).

The driver loads those keys as TEMP TABLE ``dk`` (``k`` and ``f`` cast back to the types of its own view
``a``) and does everything else exactly as locally: the key check before, the exact fetch of differing rows
(``diff/keyed``), the summary, provenance and ``--out``. So the summary and the output file are the same.

P is a power of two from the rows of both sides (about ``ROWS_PER_BUCKET`` rows a bucket, 1 to
``MAX_BUCKETS``). Intermediate files live in a locked scratch folder under the lake's ``tmp/`` (a file
system every node shares), removed when the diff ends, failed or not; `relake gc` sweeps a crashed run's.
"""

from __future__ import annotations

import os
import shutil
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import duckdb
from duckdb import ColumnExpression, ConstantExpression, Expression

from relake.db import Db, first_line
from relake.diff import Compared, Side, _key_expr, _struct
from relake.engine import Engine, job_connection, plain_file
from relake.errors import InputError
from relake.lake import Lake, locked_dir
from relake.sql import query

ROWS_PER_BUCKET = 1 << 20
MAX_BUCKETS = 1024
_UBIGINT = duckdb.sqltype("UBIGINT")
_NO_ROUND_TRIP = ("INTERVAL", "UNION(")  # key types parquet does not give back exactly (INTERVAL loses its µs)
_VARCHAR = duckdb.sqltype("VARCHAR")


def bucket_count(rows: int) -> int:
    """The number of key buckets P (a power of two) for this many rows on both sides together."""
    p = 1
    while p < MAX_BUCKETS and p * ROWS_PER_BUCKET < rows:
        p *= 2
    return p


@dataclass(frozen=True)
class MapJob:
    """One input file of one side: everything a map task needs, with absolute paths."""

    side: str  # "a" | "b"
    index: int  # the file's index in its side's file list
    path: str
    label: str
    columns: tuple[tuple[str, str], ...]  # (name, type) of the side's columns it reads, as the driver sees them
    keys: tuple[Compared, ...]
    values: tuple[Compared, ...]
    with_f: bool  # A: carry the file index as f (False when A has its own column named file_index)
    withhold: str | None  # the side's column compared with the sensitive values, or None
    sensitive: str | None  # parquet file of withheld values (view sensitive_removed), or None
    mask: int  # P - 1
    out: str  # this job's own output folder
    spill: str
    memory_limit: str | None


@dataclass(frozen=True)
class ReduceJob:
    bucket: int
    map_dir: str  # holds one folder per map job, each with bucket=N subfolders
    out: str  # parquet file for this bucket's differing keys
    spill: str
    memory_limit: str | None


def _conform(rel: duckdb.DuckDBPyRelation, columns: tuple[tuple[str, str], ...]) -> duckdb.DuckDBPyRelation:
    """This file's rows in the side's columns and types (as the driver's read of every file types them)."""
    # names match case-insensitively, as in the driver's union_by_name read of every file
    have = {c.lower(): (c, str(t)) for c, t in zip(rel.columns, rel.dtypes, strict=True)}
    exprs: list[Expression] = []
    for name, type_ in columns:
        found = have.get(name.lower())
        if found is None:
            exprs.append(ConstantExpression(None).cast(duckdb.sqltype(type_)).alias(name))
        elif found[1] != type_:
            exprs.append(ColumnExpression(found[0]).cast(duckdb.sqltype(type_)).alias(name))
        else:
            exprs.append(ColumnExpression(found[0]).alias(name))
    return rel.select(*exprs)


def shuffle_map(job: MapJob) -> None:
    """A map task: one file's ``(k, hash(r), f, side)`` rows, written by key bucket into ``job.out``."""
    shutil.rmtree(job.out, ignore_errors=True)  # a retried task starts over
    os.mkdir(job.out)  # never recreates a scratch folder the driver has already removed
    con = job_connection(job.memory_limit, job.spill)
    try:
        with ExitStack() as stack:
            plain = stack.enter_context(plain_file(job.path))
            try:
                src = _conform(con.read_parquet(plain), job.columns)
                if job.withhold is not None and job.sensitive is not None:
                    sens = con.read_parquet(stack.enter_context(plain_file(job.sensitive)))
                    cond = ColumnExpression(job.withhold).cast(_VARCHAR) == ColumnExpression("relake_sensitive")
                    src = src.join(sens, cond, how="anti")
                f: Expression = (ConstantExpression(job.index).cast(_UBIGINT) if job.with_f
                                 else ConstantExpression(None).cast(_UBIGINT))
                src.select(_key_expr(job.keys, job.side).alias("k"), _struct(job.values, job.side).alias("r"),
                           f.alias("f")).create_view("part")
                query("diff/shuffle_map").run(con, side=job.side, mask=job.mask, out=str(Path(job.out) / "p"))
            except duckdb.Error as exc:
                raise InputError(f"{job.label}: cannot read or hash its rows ({first_line(exc)})") from exc
    finally:
        con.close()


def shuffle_reduce(job: ReduceJob) -> int:
    """A reduce task: the differing keys of one bucket, written to ``job.out``; returns how many."""
    name = f"bucket={job.bucket}"
    files = sorted(str(p) for d in sorted(Path(job.map_dir).iterdir()) if (d / "p" / name).is_dir()
                   for p in (d / "p" / name).iterdir() if p.name.endswith(".parquet"))
    if not files:
        return 0
    con = job_connection(job.memory_limit, job.spill)
    try:
        with ExitStack() as stack:
            plain = [stack.enter_context(plain_file(p)) for p in files]
            try:
                con.read_parquet(plain).create_view("parts")
                n = int(query("diff/shuffle_reduce").rows(con, out=job.out)[0][0])
            except duckdb.Error as exc:
                raise InputError(f"bucket {job.bucket}: cannot compare its keys ({first_line(exc)})") from exc
    finally:
        con.close()
    return n


def _side_columns(side: Side, names: list[str]) -> tuple[tuple[str, str], ...]:
    types = {c.name: c.type for c in side.columns}
    return tuple((n, types[n]) for n in dict.fromkeys(names))


def map_jobs(
    a: Side, b: Side, keys: list[Compared], values: list[Compared], *, with_f: bool, sensitive: str | None,
    mask: int, scratch: Path, memory_limit: str | None,
) -> list[MapJob]:
    jobs: list[MapJob] = []
    for name, side in (("a", a), ("b", b)):
        withhold = None
        if sensitive is not None:
            withhold = side.roles.url if side.roles.url is not None else side.roles.id
        used = [x.a if name == "a" else x.b for x in (*keys, *values)]
        columns = _side_columns(side, used + ([withhold] if withhold is not None else []))
        for i, p in enumerate(side.paths):
            jobs.append(MapJob(
                side=name, index=i, path=str(p.absolute()), label=f"{name.upper()} file {side.file_label(i)}",
                columns=columns, keys=tuple(keys), values=tuple(values), with_f=with_f and name == "a",
                withhold=withhold, sensitive=sensitive if withhold is not None else None, mask=mask,
                out=str(scratch / "map" / f"{name}{i:06d}"), spill=str(scratch / "spill" / f"{name}{i:06d}"),
                memory_limit=memory_limit))
    return jobs


def keyed_keys_on(
    engine: Engine, db: Db, lake: Lake, a: Side, b: Side, keys: list[Compared], values: list[Compared], *,
    rows: int, with_f: bool, withhold: bool, memory_limit: str | None,
) -> None:
    """TEMP TABLE ``dk`` on ``db`` as ``diff/keyed_keys`` makes it, computed by map and reduce jobs on ``engine``.

    ``db`` must hold views ``a`` (k, r, f) and, when ``withhold``, ``sensitive_removed``."""
    k_type = db.con.table("a").dtypes[0]
    if any(t in str(k_type).upper() for t in _NO_ROUND_TRIP):
        raise InputError(f"--engine ray: a key of type {k_type} does not survive the shuffle's parquet files "
                         "unchanged; diff with --engine local, or key by other columns")
    buckets = bucket_count(rows)
    with locked_dir(lake.tmp_dir, "diff-shuffle") as scratch_dir:
        scratch = scratch_dir.path.absolute()
        (scratch / "map").mkdir()
        (scratch / "keys").mkdir()
        (scratch / "spill").mkdir()
        sensitive = None
        if withhold:
            sensitive = str(scratch / "sensitive.parquet")
            query("diff/write_sensitive").run(db.con, path=sensitive)
        jobs = map_jobs(a, b, keys, values, with_f=with_f, sensitive=sensitive, mask=buckets - 1, scratch=scratch,
                        memory_limit=memory_limit)
        engine.map(shuffle_map, jobs, label=lambda j: j.label)
        reduces = [ReduceJob(i, str(scratch / "map"), str(scratch / "keys" / f"{i:06d}.parquet"),
                             str(scratch / "spill" / f"r{i:06d}"), memory_limit) for i in range(buckets)]
        found = engine.map(shuffle_reduce, reduces, label=lambda j: f"key bucket {j.bucket} of {buckets}")
        parts = [Path(j.out) for j, n in zip(reduces, found, strict=True) if n]
        missing = [p for p in parts if not p.is_file()]
        if missing:
            raise InputError(f"{missing[0]} was written by the {engine.name} engine but is not visible here; "
                             "the lake must be on a file system every worker shares")
        a_view = db.con.table("a")
        k_type, f_type = a_view.dtypes[0], a_view.dtypes[2]
        f_null = f_type == duckdb.sqltype("NULL")  # A has its own file_index column: f is NULL, as locally
        if parts:
            rel = db.con.read_parquet([db.plain_path(p) for p in parts])
            f_expr = ConstantExpression(None) if f_null else ColumnExpression("f").cast(f_type)
            rel.select(ColumnExpression("k").cast(k_type).alias("k"), ColumnExpression("change"),
                       f_expr.alias("f")).create_view("dk_parts", replace=True)
        else:
            a_view.select(ColumnExpression("k"), ConstantExpression("added").alias("change"),
                          ColumnExpression("f")).limit(0).create_view("dk_parts", replace=True)
        query("diff/keyed_keys_load").run(db.con)
