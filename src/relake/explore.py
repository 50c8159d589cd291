"""A first look at a version: ``relake head`` (its first rows, optionally those a ``where`` picks) and ``relake sql``
(one SELECT over the lake's versions, each a view named as the version).

Both run on the connection build rules run on (``db.connect``, sandboxed: only the versions' shard files and deletion
vectors readable, never their folders, no network, no extension loaded, configuration locked). A ``--where`` is
vetted as a rule's is (``predicate.check_where``) and embedded by ``predicate.embed``; a query by
``predicate.check_select``, then run as given: no user text is formatted into other SQL.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import duckdb
from duckdb import ColumnExpression, StarExpression

from relake.canonical import register_canonical
from relake.db import Db, connect
from relake.errors import InputError, NotFoundError, duckdb_errors
from relake.lake import Lake
from relake.predicate import check_select, check_where, embed
from relake.record import Column
from relake.report import HIDDEN, Report, json_meta
from relake.sources import Side, read_side, resolve_side
from relake.sql import query

__all__ = ["Rows", "head_rows", "run_sql"]


@dataclass(frozen=True)
class Rows(Report):
    """Rows a query returned: its columns (name and type), the rows in order, and whether more were left out."""

    json_computed: ClassVar[tuple[str, ...]] = ("count",)

    columns: tuple[Column, ...]
    rows: list[tuple[Any, ...]] = field(metadata=json_meta(convert=lambda rows: [list(r) for r in rows]))
    truncated: bool = False  # the query returned more rows than the limit
    limit: int = 0
    views: tuple[str, ...] = field(default=(), metadata=HIDDEN)

    @property
    def count(self) -> int:
        return len(self.rows)


def head_rows(lake: Lake, target: str, n: int = 10, where: str | None = None) -> Rows:
    """The first ``n`` rows of a version (or parquet files) in file order; with ``where``, the first ``n`` it is
    true for. ``where`` is vetted as a build rule's ``where`` (predicate.check_where)."""
    if n < 0:
        raise InputError("-n must be 0 or more")
    with connect(None) as probe:
        side = resolve_side(lake, probe, target)
    with connect(lake, readable=[], readable_files=_files([side])) as db:
        register_canonical(db.con)
        query("build/url_host").run(db.con)
        with duckdb_errors(f"{target}: not readable as parquet"):  # file order: file_index (as filename), row
            read_side(db, side).select(StarExpression(), ColumnExpression("file_index").alias("filename"),
                                       ColumnExpression("file_row_number")).create_view("base", replace=True)
        if where is None:
            cur = query("explore/head").run(db.con, n=n)
        else:
            bound = check_where(db.con, "--where", where, {})
            with duckdb_errors("--where failed:", strict=True):
                cur = db.con.execute(embed(query("explore/head_where").text, where), {**bound, "n": n})
        return _rows(cur, n)


def run_sql(lake: Lake, text: str, limit: int = 1000) -> Rows:
    """One SELECT (``predicate.check_select``) over the lake's versions, each a view named as the version (quote
    names that are not plain identifiers: ``"research-safe"``); at most ``limit`` rows, ``truncated`` saying
    whether there were more."""
    if limit < 0:
        raise InputError("--limit must be 0 or more")
    with connect(None) as probe:
        names = sorted(check_select(probe.con, text))
        known = set(lake.version_names())
        unknown = [n for n in names if n not in known]
        if unknown:
            listing = ", ".join(sorted(known)) or "none yet"
            raise NotFoundError(f"no version named {unknown[0]!r} to query (versions: {listing}; quote a name that "
                                "is not a plain identifier, e.g. \"research-safe\")")
        sides = [resolve_side(lake, probe, n) for n in names]
    with connect(lake, readable=[], readable_files=_files(sides)) as db:
        register_canonical(db.con)
        for name, side in zip(names, sides, strict=True):
            _bind(db, name, side)
        with duckdb_errors("the query failed:", strict=True, planning="the query is not valid:"):
            cur = db.con.execute(text)  # vetted by check_select; run as given, on the sandboxed connection
            result = _rows(cur, limit)
        return Rows(result.columns, result.rows, result.truncated, limit, tuple(names))


def _bind(db: Db, name: str, side: Side) -> None:
    """View ``name`` (any version name; DuckDB takes it as one identifier, never parsed) over the side's shards."""
    with duckdb_errors(f"{name}: not readable as parquet"):
        read_side(db, side).create_view(name, replace=True)  # a vector version: its root less its vector


def _files(sides: Sequence[Side]) -> list[Path]:
    """The files a query may read: the sides' shards and deletion vectors, never their folders (a version's folder
    holds its removed.parquet; an original's, whatever else its owner keeps there)."""
    return [p.absolute() for s in sides for p in (*s.paths, *([s.deletes] if s.deletes else []))]


def _rows(cur: duckdb.DuckDBPyConnection, limit: int) -> Rows:
    description = cur.description or []
    columns = tuple(Column(str(d[0]), str(d[1])) for d in description)
    got = cur.fetchmany(limit + 1)
    return Rows(columns, [tuple(r) for r in got[:limit]], len(got) > limit, limit)
