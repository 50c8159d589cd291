"""Deletion vectors: a derived version stored as its lineage root's shards minus the rows it drops.

A version with ``storage: "vector"`` (``record.Vector``) owns ``deletes.parquet``: one row ``(shard INTEGER,
position BIGINT)`` per dropped row of its root, sorted, every generation since the root composed (a version built
from a vector version drops its parent's rows and its own). Its rows are, per root shard in order, the rows whose
``file_row_number`` is not listed. Why parquet: DuckDB reads it natively (the surviving rows are one anti join on
``file_row_number`` away, in any DuckDB, on any engine worker), zstd stores sorted positions in ~1-2 bytes each
(bench/bench_vectors.py: 5,000 of 10M rows is ~12 KB, 0.002% of the base), and it is checked like any owned
file (size and sha256 in ``version.json``).

Every reader gets a version's rows from here: ``surviving`` (a whole side, in one DuckDB), ``shard_rows``
(one shard in an engine job) and ``write_surviving`` (shard *i* of a materialised copy: publish, ``build
--materialize``; byte for byte what a materialised build writes).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
from duckdb import ColumnExpression, ConstantExpression, StarExpression

from relake.db import Db, bind_shard, write_parquet_stable, write_shard
from relake.engine import job_connection, plain_file
from relake.errors import InputError
from relake.identity import file_identity
from relake.record import sha256_file

DELETES_FILE = "deletes.parquet"
_SHIFT = 40  # a row's key in a set of files: (file index << 40) + position (a shard holds < 2^40 rows)
_DROP = "relake_drop"  # the deletion vector's key column in the anti join (only the left side's columns remain)
_BIGINT = duckdb.sqltypes.BIGINT  # a constant: duckdb.sqltype() would open the default connection at import (~20 ms)

# the column names a base of a vector version may not have (they would hide DuckDB's virtual columns)
RESERVED_COLUMNS = frozenset(("file_index", "file_row_number", "filename"))


def write_deletes(rel: duckdb.DuckDBPyRelation, out: Path) -> int:
    """Write ``rel(shard, position)`` (any order, no duplicates) as a deletion vector file; returns its rows."""
    ordered = rel.select(ColumnExpression("shard").cast(duckdb.sqltype("INTEGER")).alias("shard"),
                         ColumnExpression("position").cast(duckdb.sqltype("BIGINT")).alias("position")
                         ).order("shard, position")
    write_parquet_stable(ordered.to_arrow_reader(), out)
    return int(pq.ParquetFile(out).metadata.num_rows)


def read_positions(path: Path, shards: int) -> list[list[int]]:
    """The dropped positions of each of ``shards`` shards, ascending (what publish and engine jobs are given)."""
    table = pq.read_table(path, columns=["shard", "position"])
    out: list[list[int]] = [[] for _ in range(shards)]
    for s, p in zip(table.column("shard").to_pylist(), table.column("position").to_pylist(), strict=True):
        if s is None or p is None or not 0 <= s < shards:
            raise InputError(f"{path}: lists a row of shard {s!r}, not one of the {shards} shards")
        out[s].append(p)
    return out


def _keyed(con: duckdb.DuckDBPyConnection, deletes: str, shard: int | None) -> duckdb.DuckDBPyRelation:
    """A deletion vector file as one column ``relake_drop``: ``(shard << 40) + position`` per dropped row, or,
    for one ``shard`` read on its own, its positions."""
    rel = con.read_parquet(deletes)
    position = ColumnExpression("position").cast(_BIGINT)
    if shard is not None:
        return rel.filter(ColumnExpression("shard") == ConstantExpression(shard)).select(position.alias(_DROP))
    return rel.select((ColumnExpression("shard").cast(_BIGINT) * ConstantExpression(1 << _SHIFT) + position
                       ).alias(_DROP))


def surviving(db: Db, rel: duckdb.DuckDBPyRelation, deletes: Path) -> duckdb.DuckDBPyRelation:
    """``rel`` (a read_parquet of a vector version's root shards, in shard order) without the rows the deletion
    vector ``deletes`` lists: an anti join on (file_index, file_row_number), which keeps read_parquet's virtual
    columns (file_index) usable after it, and only ``rel``'s columns. Row order is not kept (``read_side``'s
    ``ordered``)."""
    key = ColumnExpression("file_index").cast(_BIGINT) * ConstantExpression(1 << _SHIFT) \
        + ColumnExpression("file_row_number").cast(_BIGINT)
    return rel.join(_keyed(db.con, db.plain_path(deletes), None), key == ColumnExpression(_DROP), how="anti")


def dropped_between(db: Db, rel: duckdb.DuckDBPyRelation, more: Path, fewer: Path | None
                    ) -> duckdb.DuckDBPyRelation:
    """The rows of ``rel`` (a read_parquet of a root's shards, in shard order) that deletion vector ``more`` drops
    and ``fewer`` (None: the root itself) keeps: what a descendant lost against its ancestor, read by position
    (a semi join on (file_index, file_row_number)), never the rows both hold."""
    between = _keyed(db.con, db.plain_path(more), None)
    if fewer is not None:
        between = between.join(_keyed(db.con, db.plain_path(fewer), None).select(
            ColumnExpression(_DROP).alias("relake_kept_drop")),
            ColumnExpression(_DROP) == ColumnExpression("relake_kept_drop"), how="anti")
    key = ColumnExpression("file_index").cast(_BIGINT) * ConstantExpression(1 << _SHIFT) \
        + ColumnExpression("file_row_number").cast(_BIGINT)
    return rel.join(between, key == ColumnExpression(_DROP), how="semi")


def rows_at(db: Db, paths: Sequence[Path], chosen: dict[int, list[int]]) -> duckdb.DuckDBPyRelation | None:
    """The rows at these positions (``{file index: positions}``) of a set of files, with ``file_index`` (BIGINT)
    as the position's file: each file read alone, filtered by a constant list of positions, which DuckDB's
    parquet reader prunes by row group, so only the row groups holding them are read (a semi join on
    ``file_row_number`` reads them all). None when none is chosen. For a few rows: scattered positions each
    cost a row group."""
    parts = [db.con.read_parquet(db.plain_path(paths[fi])).filter(ColumnExpression("file_row_number").isin(
                *(ConstantExpression(p) for p in positions))).select(
                StarExpression(), ConstantExpression(fi).cast(_BIGINT).alias("file_index"))
             for fi, positions in sorted(chosen.items()) if positions]
    if not parts:
        return None
    rel = parts[0]
    for part in parts[1:]:
        rel = rel.union(part)
    return rel


def shard_rows(con: duckdb.DuckDBPyConnection, path: str, deletes: str | None, shard: int
               ) -> duckdb.DuckDBPyRelation:
    """In an engine job: root shard ``shard`` (the plain path ``path``, read alone) without the rows ``deletes``
    lists for it (``deletes`` None: every row)."""
    rel = con.read_parquet(path)
    if deletes is None:
        return rel
    return rel.join(_keyed(con, deletes, shard), ColumnExpression("file_row_number").cast(_BIGINT)
                    == ColumnExpression(_DROP), how="anti")


# (source shard, output file, source rows, dropped positions, codec, memory limit)
SurvivingJob = tuple[str, Path, int, Sequence[int], str, str | None]


def write_surviving(job: SurvivingJob) -> None:
    """Shard *i* of a materialised version: a source shard without its dropped positions, in its order, in its own
    single-threaded DuckDB (so the bytes are the same on every run, engine and thread count). An engine job
    (top-level, picklable, absolute paths)."""
    src, out, rows, positions, codec, memory_limit = job
    con = job_connection(memory_limit)
    try:
        with plain_file(src) as plain:
            write_shard(con, str(out), codec, bind_shard(con, plain), positions, rows)
    finally:
        con.close()


def write_surviving_hashed(job: SurvivingJob) -> tuple[str, str]:
    """:func:`write_surviving`, returning the sha256 of the source shard (hashed before it is read; refused if its
    size or identity changed by the time the write ends) and of the written shard. Publish checks the root shards
    against their record with it: the hashing runs in the jobs, in parallel, beside the reads it vouches for."""
    src, out = Path(job[0]), job[1]
    try:
        before = file_identity(src)
        digest = sha256_file(src)
        write_surviving(job)
        after = file_identity(src)
    except OSError as exc:
        raise InputError(f"{src}: cannot read ({exc.strerror})") from exc
    if before != after:
        raise InputError(f"{src}: changed while it was being read; try again when nothing writes to it")
    return digest, sha256_file(out)


def surviving_label(job: SurvivingJob) -> str:
    return f"{job[1].name} (from {job[0]})"
