"""The key comparison of a keyed diff as map and reduce jobs on an engine (``relake diff --engine ray``).

The local keyed diff finds its differing keys with one FULL OUTER hash join on ``(k, hash(r), f)``
(``queries/diff/keyed_keys.sql``). Here that join is split by key bucket:

- **map**: one job per run of consecutive input files of A or of B (about ``ROWS_PER_MAP`` rows, by their
  footers; a larger file alone), in its own single-threaded DuckDB. It reads its files, conforms each to its
  side's columns and types (what the driver's multi-file read gives: a column missing from a file is NULL, a
  column typed otherwise in a file is cast), withholds the rows a sensitive rule removed (same anti-join as
  the driver), projects it with the very expressions of the local diff (``columns.key_expr``,
  ``columns.struct_expr``, A's file index as ``f``) and writes ``k``, ``h = hash(r)``, ``f``, ``fi`` (the row's
  file index in its side) and the side as parquet partitioned by ``hash(k) & (P - 1)``
  (``queries/diff/shuffle_map.sql``).
- **reduce**: one job per bucket reads both sides' rows of its bucket. It checks the key there
  (``diff/shuffle_key_groups`` and ``diff/shuffle_key_stats``: rows, NULL keys and duplicated keys per side,
  with the bucket's 5 most repeated keys as candidate examples), and, when the bucket has no problem, writes
  its added, removed and candidate changed keys (``queries/diff/shuffle_reduce.sql``: the join of
  ``diff/keyed_keys`` restricted to one bucket). Every row of a key lands in the same bucket, so the sums over
  buckets are the driver's key check (``diff/key_check``) and the union of the keys is the same set.
- **fetch**: one job per map job's files again reads them as the map did and writes the rows ``(k, r, f)`` of
  the differing keys (``diff/shuffle_fetch``, a semi-join). The shuffle carries each row's file index in its
  side (``fi``; per key ``fa``/``fb``), so the driver routes every differing key to the one job whose files
  hold its row (``diff/write_wanted``, partitioned by job) and runs only the jobs that got keys. The driver's
  views ``a`` and ``b`` then hold only those rows, and ``diff/keyed`` compares them exactly as locally.

So the driver never scans a side: it sums the key check, loads the differing keys as TEMP TABLE ``dk``
(``k`` and ``f`` cast back to the types of its own view ``a``) and does the rest exactly as locally: the
exact comparison of the fetched rows (``diff/keyed``), the summary, provenance and ``--out``. So the error
of a bad key, the summary and the output file are the same. Rows whose compared values parquet would alter
(INTERVAL, UNION) are fetched by the driver's own scan instead.

P is a power of two from the rows of both sides (about ``ROWS_PER_BUCKET`` rows a bucket, 1 to
``MAX_BUCKETS``). The shuffle writes at most (map jobs) × P files: grouping files into map jobs keeps that
product to about (rows / ``ROWS_PER_MAP``) × P, however small the input files are. Intermediate files
live in a locked scratch folder under the lake's ``tmp/`` (a file system every node shares), removed when the
diff ends, failed or not; `relake gc` sweeps a crashed run's.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import duckdb
from duckdb import ColumnExpression, ConstantExpression, Expression

from relake.db import Db
from relake.diff.columns import Compared, KeyProblem, key_expr, struct_expr, withhold
from relake.engine import Engine, job_connection, plain_file
from relake.errors import InputError, duckdb_errors
from relake.lake import Lake, locked_dir
from relake.sources import Side
from relake.sql import query
from relake.vectors import shard_rows

ROWS_PER_BUCKET = 1 << 20
ROWS_PER_MAP = 1 << 22  # rows of consecutive files one map (and fetch) task reads: fewer tasks, fewer shuffle files
_F = "relake_shuffle_file"  # a map task's column for the reported file index f (NULL when A has its own)
_FI = "relake_shuffle_fi"  # a map task's column for the file index in its side, always (to route fetches)
MAX_BUCKETS = 1024
_UBIGINT = duckdb.sqltypes.UBIGINT  # constants: duckdb.sqltype() would open the default connection at import
_NO_ROUND_TRIP = ("INTERVAL", "UNION(")  # key types parquet does not give back exactly (INTERVAL loses its µs)
_VARCHAR = duckdb.sqltypes.VARCHAR


def bucket_count(rows: int) -> int:
    """The number of key buckets P (a power of two) for this many rows on both sides together."""
    p = 1
    while p < MAX_BUCKETS and p * ROWS_PER_BUCKET < rows:
        p *= 2
    return p


@dataclass(frozen=True)
class MapJob:
    """Consecutive input files of one side (about ``ROWS_PER_MAP`` rows): everything a map task needs."""

    side: str  # "a" | "b"
    files: tuple[tuple[int, str], ...]  # (the file's index in its side's file list, its absolute path)
    label: str
    columns: tuple[tuple[str, str], ...]  # (name, type) of the side's columns it reads, as the driver sees them
    keys: tuple[Compared, ...]
    values: tuple[Compared, ...]
    with_f: bool  # A: carry the file index as f (False when A has its own column named file_index)
    withhold: tuple[str | None, str | None]  # the side's URL and key columns compared with the sensitive values
    sensitive: str | None  # parquet file of withheld values (view sensitive_removed), or None
    mask: int  # P - 1
    out: str  # this job's own output folder
    spill: str
    memory_limit: str | None
    deletes: str | None = None  # the side's deletion vector (a vector version), read with each file


@dataclass(frozen=True)
class ReduceJob:
    bucket: int
    map_dir: str  # holds one folder per map job, each with bucket=N subfolders
    out: str  # parquet file for this bucket's differing keys
    examples: str  # parquet file for this bucket's most repeated duplicated keys (written only if any)
    k_type: str  # the type of the driver's key, which keys are grouped, ordered and compared as
    spill: str
    memory_limit: str | None


@dataclass(frozen=True)
class ReduceResult:
    differing: int  # rows written to ReduceJob.out (0 and no file when the bucket has a key problem)
    sides: tuple[tuple[str, int, int, int, int], ...]  # (side, rows, null_rows, dup_keys, dup_rows) per side
    examples: bool  # ReduceJob.examples was written


@dataclass(frozen=True)
class FetchJob:
    map: MapJob  # the same files, read, conformed, withheld and projected as their map task did
    wanted: str  # folder of parquet files: the keys whose rows are in these files (diff/write_wanted)
    out: str  # parquet file for the fetched rows


def _conform(rel: duckdb.DuckDBPyRelation, columns: tuple[tuple[str, str], ...], *extra: Expression
             ) -> duckdb.DuckDBPyRelation:
    """This file's rows in the side's columns and types (as the driver's read of every file types them), and
    ``extra``."""
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
    return rel.select(*exprs, *extra)


def _part(con: duckdb.DuckDBPyConnection, job: MapJob, stack: ExitStack) -> None:
    """View ``part`` (k, r, f, fi): the job's files, each conformed to its side and carrying its file index (f,
    as reported; fi, always), one after the other; sensitive rows withheld; projected."""
    src: duckdb.DuckDBPyRelation | None = None
    for index, path in job.files:
        f = ConstantExpression(index if job.with_f else None).cast(_UBIGINT).alias(_F)
        fi = ConstantExpression(index).cast(_UBIGINT).alias(_FI)
        one = _conform(shard_rows(con, stack.enter_context(plain_file(path)), job.deletes, index), job.columns, f, fi)
        src = one if src is None else src.union(one)
    assert src is not None  # every job has a file
    if job.sensitive is not None:
        src = withhold(src, *job.withhold, con.read_parquet(stack.enter_context(plain_file(job.sensitive))))
    src.select(key_expr(job.keys, job.side).alias("k"), struct_expr(job.values, job.side).alias("r"),
               ColumnExpression(_F).alias("f"), ColumnExpression(_FI).alias("fi")).create_view("part")


def shuffle_map(job: MapJob) -> None:
    """A map task: its files' ``(k, hash(r), f, fi, side)`` rows, written by key bucket into ``job.out``."""
    shutil.rmtree(job.out, ignore_errors=True)  # a retried task starts over
    os.mkdir(job.out)  # never recreates a scratch folder the driver has already removed
    con = job_connection(job.memory_limit, job.spill)
    try:
        with ExitStack() as stack, duckdb_errors(f"{job.label}: cannot read or hash its rows", spill=job.spill):
            _part(con, job, stack)
            query("diff/shuffle_map").run(con, side=job.side, mask=job.mask, out=str(Path(job.out) / "p"))
    finally:
        con.close()


def shuffle_fetch(job: FetchJob) -> int:
    """A fetch task: the rows ``(k, r, f)`` of its files whose key is wanted, written to ``job.out``."""
    con = job_connection(job.map.memory_limit, job.map.spill)
    try:
        with (ExitStack() as stack,
              duckdb_errors(f"{job.map.label}: cannot fetch its differing rows", spill=job.map.spill)):
            _part(con, job.map, stack)
            wanted = sorted(str(p) for p in Path(job.wanted).iterdir() if p.name.endswith(".parquet"))
            con.read_parquet([stack.enter_context(plain_file(p)) for p in wanted]).create_view("wanted")
            return int(query("diff/shuffle_fetch").rows(con, out=job.out)[0][0])
    finally:
        con.close()


def shuffle_reduce(job: ReduceJob) -> ReduceResult:
    """A reduce task: the key check of one bucket and, when it passes, its differing keys in ``job.out``."""
    name = f"bucket={job.bucket}"
    files = sorted(str(p) for d in sorted(Path(job.map_dir).iterdir()) if (d / "p" / name).is_dir()
                   for p in (d / "p" / name).iterdir() if p.name.endswith(".parquet"))
    if not files:
        return ReduceResult(0, (), False)
    con = job_connection(job.memory_limit, job.spill)
    try:
        with ExitStack() as stack:
            plain = [stack.enter_context(plain_file(p)) for p in files]
            with duckdb_errors(f"bucket {job.bucket}: cannot compare its keys", spill=job.spill):
                rel = con.read_parquet(plain, hive_partitioning=False)
                rel.select(ColumnExpression("k").cast(duckdb.sqltype(job.k_type)).alias("k"),
                           *(ColumnExpression(c) for c in ("h", "f", "fi", "side"))).create_view("parts")
                query("diff/shuffle_key_groups").run(con)
                sides = tuple((str(s), int(n), int(nul), int(dk), int(dr))
                              for s, n, nul, dk, dr in query("diff/shuffle_key_stats").rows(con))
                examples = any(dk for *_, dk, _ in sides)
                if examples:
                    query("diff/shuffle_key_examples").run(con, out=job.examples)
                differing = 0
                if not any(nul or dk for _, _, nul, dk, _ in sides):
                    differing = int(query("diff/shuffle_reduce").rows(con, out=job.out)[0][0])
    finally:
        con.close()
    return ReduceResult(differing, sides, examples)


def _side_columns(side: Side, names: list[str]) -> tuple[tuple[str, str], ...]:
    types = {c.name: c.type for c in side.columns}
    return tuple((n, types[n]) for n in dict.fromkeys(names))


def file_rows(db: Db, side: Side) -> list[int]:
    """Rows of each file of ``side``, from the footers."""
    names = [db.plain_path(p) for p in side.paths]
    rows = {str(f): int(n) for f, n in query("diff/file_rows").rows(db.con, files=names)}
    return [rows[n] for n in names]


def file_groups(rows: Sequence[int]) -> list[list[int]]:
    """Consecutive file indexes in groups of at most ``ROWS_PER_MAP`` rows (a larger file alone)."""
    groups: list[list[int]] = []
    total = 0
    for i, n in enumerate(rows):
        if not groups or (total + n > ROWS_PER_MAP and groups[-1]):
            groups.append([])
            total = 0
        groups[-1].append(i)
        total += n
    return groups


def map_jobs(
    a: Side, b: Side, keys: list[Compared], values: list[Compared], *, rows: tuple[list[int], list[int]],
    with_f: bool, sensitive: str | None, mask: int, scratch: Path, memory_limit: str | None,
) -> list[MapJob]:
    """The map (or fetch) jobs of both sides; ``rows``: the rows of each file of A and of B."""
    jobs: list[MapJob] = []
    for (name, side), side_rows in zip((("a", a), ("b", b)), rows, strict=True):
        held = (side.roles.url, side.roles.id) if sensitive is not None else (None, None)
        used = [x.a if name == "a" else x.b for x in (*keys, *values)]
        columns = _side_columns(side, used + [c for c in held if c is not None])
        for group in file_groups(side_rows):
            first, last = group[0], group[-1]
            what = (f"file {side.file_label(first)}" if first == last
                    else f"files {side.file_label(first)} to {side.file_label(last)}")
            jobs.append(MapJob(
                side=name, files=tuple((i, str(side.paths[i].absolute())) for i in group),
                label=f"{name.upper()} {what}", columns=columns, keys=tuple(keys), values=tuple(values),
                with_f=with_f and name == "a", withhold=held,
                sensitive=sensitive if held != (None, None) else None, mask=mask,
                out=str(scratch / "map" / f"{name}{first:06d}"), spill=str(scratch / "spill" / f"{name}{first:06d}"),
                memory_limit=memory_limit, deletes=None if side.deletes is None else str(side.deletes.absolute())))
    return jobs


def keyed_keys_on(
    engine: Engine, db: Db, lake: Lake, a: Side, b: Side, keys: list[Compared], values: list[Compared], *,
    with_f: bool, withhold: bool, memory_limit: str | None,
) -> tuple[list[KeyProblem], tuple[int, int]]:
    """The key check of ``diff/key_check`` and, when the key has no problem, TEMP TABLE ``dk`` on ``db`` as
    ``diff/keyed_keys`` makes it, both computed by map and reduce jobs on ``engine``.

    Returns the key's problems (as ``diff.local.check_key`` finds them) and the rows of each side. ``db`` must hold
    views ``a`` (k, r, f) and, when ``withhold``, ``sensitive_removed``."""
    a_view = db.con.table("a")
    k_type, f_type = a_view.dtypes[0], a_view.dtypes[2]
    if any(t in str(k_type).upper() for t in _NO_ROUND_TRIP):
        raise InputError(f"--engine {engine.name}: a key of type {k_type} does not survive the shuffle's parquet "
                         "files unchanged; diff with --engine local, or key by other columns")
    rows_per_file = file_rows(db, a), file_rows(db, b)
    buckets = bucket_count(sum(map(sum, rows_per_file)))
    with _scratch(db, lake, withhold) as (scratch, sensitive):
        (scratch / "map").mkdir()
        (scratch / "keys").mkdir()
        jobs = map_jobs(a, b, keys, values, rows=rows_per_file, with_f=with_f, sensitive=sensitive,
                        mask=buckets - 1, scratch=scratch, memory_limit=memory_limit)
        engine.map(shuffle_map, jobs, label=lambda j: j.label)
        reduces = [ReduceJob(i, str(scratch / "map"), str(scratch / "keys" / f"{i:06d}.parquet"),
                             str(scratch / "keys" / f"examples-{i:06d}.parquet"), str(k_type),
                             str(scratch / "spill" / f"r{i:06d}"), memory_limit) for i in range(buckets)]
        found = engine.map(shuffle_reduce, reduces, label=lambda j: f"key bucket {j.bucket} of {buckets}")
        totals = {side: [0, 0, 0, 0] for side in ("a", "b")}  # rows, null_rows, dup_keys, dup_rows
        for result in found:
            for side, *counts in result.sides:
                totals[side] = [t + c for t, c in zip(totals[side], counts, strict=True)]
        rows = (totals["a"][0], totals["b"][0])
        if any(t[1] or t[2] for t in totals.values()):
            examples = _examples(db, engine, [Path(j.examples) for j, r in zip(reduces, found, strict=True)
                                              if r.examples], k_type)
            return [KeyProblem(side.upper(), t[2], t[3], t[1], examples.get(side, []))
                    for side, t in totals.items() if t[1] or t[2]], rows
        parts = _visible(engine, [Path(j.out) for j, r in zip(reduces, found, strict=True) if r.differing])
        f_null = f_type == duckdb.sqltype("NULL")  # A has its own file_index column: f is NULL, as locally
        if parts:
            rel = db.con.read_parquet([db.plain_path(p) for p in parts])
            f_expr = ConstantExpression(None) if f_null else ColumnExpression("f").cast(f_type)
            rel.select(ColumnExpression("k").cast(k_type).alias("k"), ColumnExpression("change"),
                       f_expr.alias("f"), ColumnExpression("fa").cast(_UBIGINT).alias("fa"),
                       ColumnExpression("fb").cast(_UBIGINT).alias("fb")).create_view("dk_parts", replace=True)
        else:
            a_view.select(ColumnExpression("k"), ConstantExpression("added").alias("change"), ColumnExpression("f"),
                          ConstantExpression(None).cast(_UBIGINT).alias("fa"),
                          ConstantExpression(None).cast(_UBIGINT).alias("fb")
                          ).limit(0).create_view("dk_parts", replace=True)
        query("diff/keyed_keys_load").run(db.con)
    return [], rows


@contextmanager
def keyed_rows_on(
    engine: Engine, db: Db, lake: Lake, a: Side, b: Side, keys: list[Compared], values: list[Compared], *,
    with_f: bool, withhold: bool, memory_limit: str | None,
) -> Iterator[None]:
    """Views ``a`` and ``b`` on ``db`` replaced, while open, by only the rows of the differing keys of TEMP
    TABLE ``dk``, fetched by one job per map job's files on ``engine`` (what ``diff/keyed`` reads of them).
    Each job reads only the keys whose rows its files hold (``dk``'s fa and fb, from the shuffle); a job whose
    files hold none is not run.

    Rows whose compared values parquet would alter are left to the driver's own views (its scan)."""
    a_view, b_view = db.con.table("a"), db.con.table("b")
    if any(t in str(a_view.dtypes[1]).upper() for t in _NO_ROUND_TRIP):
        yield
        return
    with _scratch(db, lake, withhold) as (scratch, sensitive):
        (scratch / "fetch").mkdir()
        maps = map_jobs(a, b, keys, values, rows=(file_rows(db, a), file_rows(db, b)), with_f=with_f,
                        sensitive=sensitive, mask=0, scratch=scratch, memory_limit=memory_limit)
        jobs: list[FetchJob] = []
        for side, skip, paths in (("a", "added", a.paths), ("b", "removed", b.paths)):
            mine = [m for m in maps if m.side == side]
            groups = [0] * len(paths)  # each file's map job (its index among this side's jobs)
            for g, m in enumerate(mine):
                for i, _ in m.files:
                    groups[i] = g
            wanted = scratch / f"wanted-{side}"
            query("diff/write_wanted").run(db.con, side=side, skip=skip, groups=groups, path=str(wanted))
            for g, m in enumerate(mine):  # only the jobs whose files hold a wanted key
                if (wanted / f"g={g}").is_dir():
                    jobs.append(FetchJob(m, str(wanted / f"g={g}"),
                                         str(scratch / "fetch" / f"{side}{m.files[0][0]:06d}.parquet")))
        views = (("a", a_view), ("b", b_view))
        empty = {side: str(scratch / f"empty-{side}.parquet") for side, _ in views}
        for side, view in views:  # so a side whose rows no task fetched still reads as its columns
            view.limit(0).write_parquet(empty[side])
        engine.map(shuffle_fetch, jobs, label=lambda j: j.map.label)
        for side, view in views:
            parts = [Path(empty[side]), *_visible(engine, [Path(j.out) for j in jobs if j.map.side == side])]
            types = dict(zip(view.columns, view.dtypes, strict=True))
            rel = db.con.read_parquet([db.plain_path(p) for p in parts], union_by_name=True)
            rel.select(*(ConstantExpression(None).alias(c) if t == duckdb.sqltype("NULL")
                         else ColumnExpression(c).cast(t).alias(c) for c, t in types.items())
                       ).create_view(side, replace=True)
        yield


@contextmanager
def _scratch(db: Db, lake: Lake, withhold: bool) -> Iterator[tuple[Path, str | None]]:
    """A locked scratch folder under the lake's tmp/ (with spill/ and, when ``withhold``, the sensitive values
    as parquet for the tasks), removed when the block ends, failed or not."""
    with locked_dir(lake.tmp_dir, "diff-shuffle") as scratch_dir:
        scratch = scratch_dir.path.absolute()
        (scratch / "spill").mkdir()
        sensitive = None
        if withhold:
            sensitive = str(scratch / "sensitive.parquet")
            query("diff/write_sensitive").run(db.con, path=sensitive)
        yield scratch, sensitive


def _visible(engine: Engine, parts: list[Path]) -> list[Path]:
    missing = [p for p in parts if not p.is_file()]
    if missing:
        raise InputError(f"{missing[0]} was written by the {engine.name} engine but is not visible here; "
                         "the lake must be on a file system every worker shares")
    return parts


def _examples(db: Db, engine: Engine, parts: list[Path], k_type: duckdb.sqltypes.DuckDBPyType) -> dict[str, list[str]]:
    """Per side, up to 5 duplicated keys as JSON text, from every bucket's candidates (diff/shuffle_examples)."""
    if not parts:
        return {}
    rel = db.con.read_parquet([db.plain_path(p) for p in _visible(engine, parts)])
    rel.select(ColumnExpression("side"), ColumnExpression("k").cast(k_type).alias("k"),
               ColumnExpression("n")).create_view("key_examples", replace=True)
    return {str(side): [str(e) for e in ex] for side, ex in query("diff/shuffle_examples").rows(db.con)}
