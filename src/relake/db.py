"""DuckDB connections (threads, memory limit, spill folder), binding parquet files as views, column roles.

DuckDB treats every path it is given as a glob, so a file named ``data[1].parquet`` could silently read
``data1.parquet``. Paths with glob characters are therefore bound through a private folder of plain-named
symlinks; everything else is bound as given. Views are created from Python (relational API), so no path
or column name is ever formatted into SQL text.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from relake.errors import InputError, duckdb_errors, duckdb_resources
from relake.lake import Lake, has_glob_chars
from relake.record import Roles
from relake.sql import query


def bind_shard(con: duckdb.DuckDBPyConnection, path: str, view: str = "shard") -> dict[str, str]:
    """View ``view`` over one parquet file (a plain path) with its ``file_row_number``, for rewriting it; returns
    the file's key-value metadata to keep (see :func:`kept_kv`).

    DuckDB's parquet writer declares a column ``required`` when the statistics of what it writes show no NULL,
    so a column the file declares optional (img2dataset, pyarrow and Spark declare every column so) would come
    back required wherever a shard happens to hold no NULL: one dataset's shards would then disagree on their
    schema (``pyarrow.concat_tables`` and datasets refuse them). Here each top-level column the file declares
    optional passes through ``CASE WHEN c IS NULL THEN NULL ELSE c END``, which keeps every value and lets
    the writer declare it optional again; required columns stay required."""
    with duckdb_errors(f"{path}: not a readable parquet file"):
        elements = query("db/parquet_schema").rows(con, file=path)
    optional: set[str] = set()
    i = 1  # elements[0] is the root; each top-level column is followed by its subtree

    def past(i: int) -> int:
        end = i + 1
        for _ in range(int(elements[i][2] or 0)):
            end = past(end)
        return end

    while i < len(elements):
        if elements[i][1] == "OPTIONAL":
            optional.add(str(elements[i][0]))
        i = past(i)
    rel = con.read_parquet(path, file_row_number=True, hive_partitioning=False)
    exprs = []
    for c in rel.columns:
        col = duckdb.ColumnExpression(c)
        if c in optional:
            col = duckdb.CaseExpression(col.isnull(), duckdb.ConstantExpression(None)).otherwise(col)
        exprs.append(col.alias(c))
    rel.select(*exprs).create_view(view, replace=True)
    with duckdb_errors(f"{path}: not a readable parquet file"):
        pairs = query("db/kv_metadata").rows(con, file=path)
    return kept_kv(pairs)


def kept_kv(pairs: Sequence[tuple[bytes, bytes]]) -> dict[str, str]:
    """The key-value pairs of a parquet footer a rewritten file keeps (pandas' and a producer's own): all but
    ``ARROW:schema`` (the arrow types of the source, which DuckDB's writer does not reproduce) and pairs DuckDB
    cannot write back (an empty key, or bytes that are not UTF-8: its ``KV_METADATA`` takes strings)."""
    kept: dict[str, str] = {}
    for key, value in pairs:
        try:
            k, v = bytes(key).decode("utf-8"), bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            continue
        if k and k != "ARROW:schema":
            kept[k] = v
    return kept


def write_shard(con: duckdb.DuckDBPyConnection, out: str, codec: str, kv: dict[str, str],
                positions: Sequence[int] = (), rows: int = 0) -> None:
    """Write view ``shard`` (:func:`bind_shard`) to ``out`` without the rows at ``positions`` (of ``rows``), in
    order, with ``codec`` and the key-value metadata ``kv``; on a single-threaded connection the bytes are the
    same on every run."""
    mask: str | None = None
    if positions and rows:
        bits = bytearray(b"0") * rows
        for p in positions:
            bits[p] = 0x31
        mask = bits.decode("ascii")
    if kv:
        query("db/write_shard_kv").run(con, mask=mask, out=out, codec=codec, kv=kv)
    else:
        query("db/write_shard").run(con, mask=mask, out=out, codec=codec)


_MEMORY = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*([KMGT]i?B|B)\s*", re.IGNORECASE)
_UNITS = {u.lower(): u for u in ("B", "KB", "MB", "GB", "TB", "KiB", "MiB", "GiB", "TiB")}


def check_memory_limit(value: str) -> str:
    """A memory limit as DuckDB reads it (``2GB``, ``512MiB``, ``1.5GB``): a number above zero and a unit; an
    :class:`InputError` for anything else (``-1GB``, ``0GB``, ``lots``)."""
    m = _MEMORY.fullmatch(value)
    if m is None or float(m.group(1)) <= 0:
        raise InputError(f"memory limit {value!r}: expected a size above zero, a number and a unit (KB, MB, GB, TB, "
                         "KiB, MiB, GiB, TiB), e.g. 2GB")
    return m.group(1) + _UNITS[m.group(2).lower()]


def max_threads() -> int:
    """The most threads relake starts: 4 per CPU (more only cost memory and time)."""
    return 4 * (os.cpu_count() or 1)


def default_memory_limit() -> str:
    """Half of physical RAM, at least 1 GB: a sensible share when other work runs beside us."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):
        return "4GB"
    return f"{max(1, total // 2 // (1 << 30))}GB"


@dataclass
class Db:
    con: duckdb.DuckDBPyConnection
    links: Path  # private folder of symlinks for paths DuckDB would glob
    linked: dict[str, str] = field(default_factory=dict)  # path -> its plain-named symlink

    def bind_parquet(self, view: str, paths: Sequence[Path], *, union_by_name: bool = False) -> None:
        """Create (or replace) view ``view`` over exactly these files, in this order."""
        if not paths:
            raise InputError("no parquet files to read")
        safe = [self.plain_path(p) for p in paths]
        rel = self.con.read_parquet(safe, union_by_name=union_by_name)
        rel.create_view(view, replace=True)

    def plain_path(self, path: Path) -> str:
        text = str(path)
        if not has_glob_chars(text):
            return text
        if text not in self.linked:
            self.links.mkdir(parents=True, exist_ok=True)
            link = self.links / f"f{len(self.linked):06d}.parquet"
            os.symlink(path.absolute(), link)
            self.linked[text] = str(link)
        return self.linked[text]

    def close(self) -> None:
        self.con.close()


@contextmanager
def connect(
    lake: Lake | None = None,
    *,
    memory_limit: str | None = None,
    threads: int | None = None,
    readable: Sequence[Path] | None = None,
    readable_files: Sequence[Path] = (),
) -> Iterator[Db]:
    """An in-memory DuckDB with a memory limit and, when a lake is given, a spill folder inside it.

    With ``readable`` it is a sandbox (the connection rules run on): files only under those folders, the files
    ``readable_files`` and relake's own temp folders, no network, no extension installed or loaded on demand,
    configuration locked."""
    with _spill(lake) as spill, tempfile.TemporaryDirectory(prefix="relake-links-") as links:
        if has_glob_chars(links):
            raise InputError(f"the temp folder {links} has glob characters; set TMPDIR to a plain path")
        config: dict[str, str | bool | int | float | list[str]] = {
            "memory_limit": check_memory_limit(memory_limit) if memory_limit else default_memory_limit(),
            "preserve_insertion_order": True,
        }
        if threads:
            config["threads"] = min(threads, max_threads())
        if spill is not None:
            config["temp_directory"] = str(spill)
        if readable is not None:
            config["autoinstall_known_extensions"] = False
            config["autoload_known_extensions"] = False
        with duckdb_errors("cannot start DuckDB:"):
            con = duckdb.connect(":memory:", config=config)
        query("db/quiet").run(con)
        if readable is not None:
            own = [Path(links)] + ([spill] if spill is not None else [])
            dirs = sorted({str(Path(p).absolute()).rstrip("/") + "/" for p in [*readable, *own]})
            query("db/time_zone_utc").run(con)
            query("db/allow_directories").run(con, dirs=dirs)
            if readable_files:
                query("db/allow_paths").run(con, files=sorted({str(Path(f).absolute()) for f in readable_files}))
            query("db/no_external_access").run(con)
            query("db/lock_configuration").run(con)
        db = Db(con, Path(links) / "l")
        try:
            with duckdb_resources(spill or Path(".tmp").absolute()):  # DuckDB's own spill folder without a lake
                yield db
        finally:
            db.close()


@contextmanager
def _spill(lake: Lake | None) -> Iterator[Path | None]:
    if lake is None:
        yield None
        return
    with lake.spill_dir() as d:
        yield d


def write_parquet_stable(table: Any, out: Path) -> None:
    """Write an Arrow table or record-batch reader with one single-threaded DuckDB, so the bytes are the same on
    every run (a multi-threaded COPY cuts row groups wherever batches happen to arrive)."""
    con = duckdb.connect(":memory:", config={"threads": 1})
    try:
        query("db/quiet").run(con)
        con.from_arrow(table).create_view("out_rows")
        query("db/write_parquet").run(con, out=str(out))
    finally:
        con.close()


# Column roles: canonical role -> candidate source names, in order of preference (case-insensitive).
ROLE_CANDIDATES: dict[str, tuple[str, ...]] = {
    "url": ("url",),
    "caption": ("text", "caption"),
    "id": ("sample_id", "key"),
}


def detect_roles(
    columns: Sequence[str],
    *,
    url: str | None = None,
    caption: str | None = None,
    id: str | None = None,
    where: str = "input",
) -> Roles:
    """Map source columns to roles once, by name case-insensitively; explicit names must exist exactly."""
    by_lower: dict[str, list[str]] = {}
    for c in columns:
        by_lower.setdefault(c.lower(), []).append(c)

    def pick(role: str, explicit: str | None) -> str | None:
        if explicit is not None:
            if explicit not in columns:
                raise InputError(
                    f"{where}: column {explicit!r} given for {role} does not exist "
                    f"(columns: {', '.join(columns)})"
                )
            return explicit
        for cand in ROLE_CANDIDATES[role]:
            found = by_lower.get(cand, [])
            if len(found) > 1:
                raise InputError(
                    f"{where}: columns {found} differ only by case; name the {role} column with --{role}-col"
                )
            if found:
                return found[0]
        return None

    return Roles(url=pick("url", url), caption=pick("caption", caption), id=pick("id", id))
