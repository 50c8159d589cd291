"""Row-level diffs between two lake versions or any two parquet sets: keyed, keyless or with mapped columns.

How it works (everything out of core, under the connection's memory limit):

1. Each side is read as a view (``a_src`` / ``b_src``). Column names are mapped once, here: ``--map URL=url``
   says A's ``URL`` is B's ``url``; compared columns are those both sides have, under A's names, in A's order.
   A column whose type differs is compared by its text (``CAST(x AS VARCHAR)``) on both sides.
2. Both sides are projected through DuckDB's relational API (no identifier ever enters SQL text) into a
   fixed shape: ``k`` (the key: the column itself, or a STRUCT of several columns; absent when keyless),
   ``r`` (STRUCT of the other compared columns; the whole compared row when keyless), ``f`` (A's file index).
3. The fixed queries in ``queries/diff/`` do the rest: a key check (duplicated or NULL keys refuse a keyed
   diff; it also counts each side's rows), then two passes over each side, writing only the differing rows
   to a TEMP TABLE ``d``; small aggregates over ``d`` make the summary, and COPY writes the full diff.
   The first pass carries only a 64-bit DuckDB ``hash()`` of each row (computed in this process, never
   stored), so its state stays far below the memory limit (no spill at 10M rows under 1 GB). Keyed: one
   FULL OUTER hash join on ``k`` carrying ``(k, hash(r), f)`` finds the added, removed and candidate changed
   keys (TEMP TABLE ``dk``); the second pass fetches ``r`` for those keys only (semi-joins on ``dk``) and
   drops any candidate whose values are not distinct. Keyless: one aggregate over both sides into 2^18 hash
   buckets of (rows of A, rows of B, sum of a mix of the hash ±) (TEMP TABLE ``dg``, which also counts each
   side's rows); the second pass groups the whole rows of the differing buckets only, counting copies
   exactly. Equal rows always hash equal, so nothing differing is reported equal unless hashes collide:
   keyed, a changed row whose old and new values share the 64-bit hash; keyless, rows whose counts and mixed
   hash sums cancel inside one bucket — about 2^-64 each for data not crafted against DuckDB's hash.
   Measured at 10M rows, --memory-limit 1GB, 2 cores: keyed 18.9 s -> 6.3 s, keyless 28.5 s -> 6.0 s.
4. When both sides are lake versions with the same schema and no mapping, their manifests' fingerprint buckets
   are compared first. With every bucket equal the versions hold the same multiset of rows (up to md5
   collisions), so no row is read (only the key check runs). Otherwise the number of differing buckets is
   reported, but rows are not filtered by bucket: that needs md5(to_json(row)) of every row on both sides,
   measured slower than the whole join (2M rows, 29 of 256 buckets differing: keyed 18.2 s filtered vs 6.7 s
   not; keyless 16.8 s vs 12.7 s).

Output file layout (``--out``; parquet, csv or jsonl by extension), sorted by key:
``<key columns…> | change | changed_columns | before_<col> | after_<col> …`` with one before/after pair per
compared non-key column (A's names; NULL on the absent side). Keyless diffs have ``row_md5`` (md5 hex of the
row's JSON) in place of the key and one line per added or removed copy. In CSV ``changed_columns`` is
comma-joined; in parquet and JSON lines it is a list.
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
from duckdb import CaseExpression, ColumnExpression, ConstantExpression, Expression, FunctionExpression

from relake.db import Db, connect, detect_roles, first_line
from relake.errors import InputError, NotFoundError
from relake.fingerprint import ALGORITHM, fingerprint_src
from relake.ingest import resolve_sources
from relake.lake import VERSION_FILE, Lake, check_user_path
from relake.record import Column, Fingerprint, Roles, Version
from relake.sql import query

if TYPE_CHECKING:
    from relake.engine import Engine

OUT_FORMATS = {".parquet": "diff/write_parquet", ".csv": "diff/write_csv", ".jsonl": "diff/write_jsonl"}
REMOVED_FILE = "removed.parquet"
_VARCHAR = duckdb.sqltype("VARCHAR")
_MAX_CHAIN = 1000
_BUCKET_MASK = (1 << 18) - 1  # keyless: 262,144 hash buckets, compared before any row is grouped
KEYLESS_LOCAL_ONLY = "a keyless diff runs on the local engine only"


# ---------------------------------------------------------------------------------------------- sides


@dataclass(frozen=True)
class Side:
    """One side of a diff: a lake version (``version`` and ``folder`` set) or a set of parquet files."""

    spec: str
    paths: tuple[Path, ...]
    columns: tuple[Column, ...]
    roles: Roles
    version: Version | None = None
    folder: Path | None = None

    @property
    def kind(self) -> str:
        return "version" if self.version is not None else "files"

    def file_label(self, index: int) -> str:
        p = self.paths[index]
        if self.folder is not None:
            try:
                return str(p.relative_to(self.folder))
            except ValueError:
                return str(p)
        return str(p)


def is_path_spec(spec: str) -> bool:
    """A diff operand is a path when it contains '/', ends in .parquet or exists; otherwise a version name."""
    return "/" in spec or spec.endswith(".parquet") or Path(spec).exists()


def resolve_side(lake: Lake, db: Db, spec: str) -> Side:
    if "/" not in spec and not spec.endswith(".parquet") and Path(spec).exists() and lake.has_version(spec):
        raise InputError(f"{spec!r} is both a version of the lake and a file or folder here; "
                         f"write ./{spec} for the path")
    if is_path_spec(spec):
        p = check_user_path(spec)
        if (p / VERSION_FILE).is_file():  # a version (or release) folder: its shards, never removed.parquet
            text = (p / VERSION_FILE).read_text(encoding="utf-8")
            return _version_side(spec, Version.from_json(text, str(p / VERSION_FILE)), p)
        paths = tuple(resolve_sources([spec]))
        try:
            rel = db.con.read_parquet([db.plain_path(x) for x in paths], union_by_name=True)
        except duckdb.Error as exc:
            raise InputError(f"{spec}: not readable as parquet ({first_line(exc)})") from exc
        columns = tuple(Column(n, str(t)) for n, t in zip(rel.columns, rel.dtypes, strict=True))
        return Side(spec, paths, columns, detect_roles([c.name for c in columns], where=spec))
    return _version_side(spec, lake.load_version(spec), lake.version_dir(spec))


def _version_side(spec: str, version: Version, folder: Path) -> Side:
    paths = tuple(version.shard_path(folder, s) for s in version.shards)
    if not paths:
        raise InputError(f"{spec}: version {version.name!r} has no shards")
    for s, p in zip(version.shards, paths, strict=True):  # the cheap check; `relake verify` re-hashes every byte
        if not p.is_file() or p.stat().st_size != s.bytes:
            raise InputError(f"{p}: shard of {version.name} is missing or changed size; run `relake verify {spec}`")
    return Side(spec, paths, version.schema, version.roles, version, folder)


# --------------------------------------------------------------------------------------- column layout


@dataclass(frozen=True)
class Compared:
    """A column compared on both sides: its name in the diff (A's) and its source name on each side."""

    name: str
    a: str
    b: str
    as_text: bool  # the types differ: both sides compared as VARCHAR


@dataclass(frozen=True)
class SchemaChanges:
    added: tuple[Column, ...]  # only in B (B's names)
    removed: tuple[Column, ...]  # only in A
    retyped: tuple[tuple[str, str, str], ...]  # (name, type in A, type in B)
    mapped: tuple[tuple[str, str], ...]  # (A name, B name) actually applied


def parse_maps(items: Sequence[str]) -> list[tuple[str, str]]:
    """``A_COL=B_COL`` pairs; each column at most once per side."""
    pairs: list[tuple[str, str]] = []
    for item in items:
        a, sep, b = item.partition("=")
        if not sep or not a or not b:
            raise InputError(f"--map {item!r}: expected A_COLUMN=B_COLUMN, e.g. --map URL=url")
        pairs.append((a, b))
    for i, side in ((0, "A"), (1, "B")):
        names = [p[i] for p in pairs]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise InputError(f"--map names {side}'s column {dup[0]!r} more than once")
    return pairs


def compare_layout(a: Side, b: Side, maps: Sequence[tuple[str, str]]) -> tuple[list[Compared], SchemaChanges]:
    a_types = {c.name: c.type for c in a.columns}
    b_types = {c.name: c.type for c in b.columns}
    for a_name, b_name in maps:
        if a_name not in a_types:
            raise InputError(f"--map {a_name}={b_name}: A ({a.spec}) has no column {a_name!r} "
                             f"(columns: {', '.join(a_types)})")
        if b_name not in b_types:
            raise InputError(f"--map {a_name}={b_name}: B ({b.spec}) has no column {b_name!r} "
                             f"(columns: {', '.join(b_types)})")
    a_to_b = dict(maps)
    mapped_b = set(a_to_b.values())
    compared: list[Compared] = []
    used_b: set[str] = set()
    for c in a.columns:
        if c.name in a_to_b:
            bn: str | None = a_to_b[c.name]
        elif c.name in b_types and c.name not in mapped_b:
            bn = c.name
        else:
            bn = None
        if bn is None:
            continue
        used_b.add(bn)
        compared.append(Compared(c.name, c.name, bn, as_text=c.type != b_types[bn]))
    lower = [x.name.lower() for x in compared]
    if len(set(lower)) != len(lower):
        raise InputError("compared columns differ only by case; DuckDB cannot tell them apart")
    changes = SchemaChanges(
        added=tuple(c for c in b.columns if c.name not in used_b),
        removed=tuple(c for c in a.columns if c.name not in {x.a for x in compared}),
        retyped=tuple((x.name, a_types[x.a], b_types[x.b]) for x in compared if x.as_text),
        mapped=tuple((a_name, b_name) for a_name, b_name in maps),
    )
    return compared, changes


def _role_hints(a: Side, b: Side, compared: Sequence[Compared]) -> list[str]:
    """Suggest --map for role columns (URL/url, TEXT/caption, …) that are named differently on each side."""
    names = {x.name for x in compared}
    hints = []
    for role in ("url", "caption", "id"):
        ca, cb = getattr(a.roles, role), getattr(b.roles, role)
        if ca and cb and ca != cb and ca not in names:
            hints.append(f"A's {ca} and B's {cb} both look like the {role} column; compare them with --map {ca}={cb}")
    return hints


# ------------------------------------------------------------------------------------------ the summary


@dataclass
class KeyProblem:
    side: str
    dup_keys: int
    dup_rows: int
    null_rows: int
    examples: list[str]


@dataclass
class DiffSummary:
    a: dict[str, Any]
    b: dict[str, Any]
    mode: str  # "keyed" | "keyless"
    key: list[str]
    key_note: str | None
    compared: list[str]
    rows_a: int = 0
    rows_b: int = 0
    added: int = 0
    removed: int = 0
    changed: int = 0
    unchanged: int = 0
    column_changes: dict[str, int] = field(default_factory=dict)
    schema: dict[str, Any] = field(default_factory=dict)
    removed_by_rule: dict[str, int] | None = None
    removed_by_category: dict[str, int] | None = None
    provenance_note: str | None = None
    withheld_sensitive: int = 0
    provenance_rows: int | None = None
    removed_by_domain: list[tuple[str | None, int]] = field(default_factory=list)
    removed_by_shard: list[dict[str, Any]] = field(default_factory=list)
    buckets: dict[str, Any] | None = None
    hints: list[str] = field(default_factory=list)
    out: str | None = None
    out_rows: int | None = None
    seconds: float = 0.0

    @property
    def rows_differ(self) -> bool:
        return bool(self.added or self.removed or self.changed)

    @property
    def identical(self) -> bool:
        return not self.rows_differ and not (self.schema.get("added") or self.schema.get("removed")
                                             or self.schema.get("retyped"))

    def to_dict(self) -> dict[str, Any]:
        return {
            "a": self.a, "b": self.b, "mode": self.mode, "key": self.key, "key_note": self.key_note,
            "identical": self.identical,
            "rows": {"a": self.rows_a, "b": self.rows_b, "added": self.added, "removed": self.removed,
                     "changed": self.changed, "unchanged": self.unchanged},
            "compared_columns": self.compared, "column_changes": self.column_changes, "schema": self.schema,
            "removed_by_rule": self.removed_by_rule, "removed_by_category": self.removed_by_category,
            "provenance_note": self.provenance_note, "withheld_sensitive": self.withheld_sensitive,
            "removed_by_domain": [{"host": h, "rows": n} for h, n in self.removed_by_domain],
            "removed_by_shard": self.removed_by_shard, "buckets": self.buckets, "hints": self.hints,
            "out": self.out, "out_rows": self.out_rows, "seconds": round(self.seconds, 3),
        }


# ------------------------------------------------------------------------------------------------ diff


def diff_versions(
    lake: Lake,
    a_spec: str,
    b_spec: str,
    *,
    key: Sequence[str] | None = None,
    keyless: bool = False,
    maps: Sequence[str] = (),
    out: str | None = None,
    memory_limit: str | None = None,
    threads: int | None = None,
    use_buckets: bool = True,
    top: int = 10,
    engine: Engine | None = None,
) -> DiffSummary:
    """Diff A against B (version names or parquet paths); write the full diff to ``out`` when given.

    With ``engine`` (e.g. Ray), a keyed diff checks the key, compares keys and row hashes and fetches the rows of
    the differing keys in map, reduce and fetch jobs on it (``relake.diff_dist``); the exact comparison of those
    rows and everything else runs here, and the summary, output and errors are the same."""
    start = time.perf_counter()
    if key is not None and keyless:
        raise InputError("--key and --keyless exclude each other")
    if keyless and engine is not None:
        raise InputError(f"{KEYLESS_LOCAL_ONLY}; drop --keyless (diff by key) or use --engine local")
    if key is not None and not [k for k in key if k]:
        raise InputError("--key needs at least one column name")
    fmt = out_format(out) if out is not None else None
    pairs = parse_maps(maps)
    with connect(lake, memory_limit=memory_limit, threads=threads) as db:
        a = resolve_side(lake, db, a_spec)
        b = resolve_side(lake, db, b_spec)
        compared, changes = compare_layout(a, b, pairs)
        a_src = _read(db, a)
        b_src = _read(db, b)
        sensitive = _sensitive_removals(db, lake, a, b)
        if sensitive is not None:
            a_src.create_view("a_all", replace=True)
            a_src, b_src = (_without(src, side, sensitive) for src, side in ((a_src, a), (b_src, b)))
        a_src.create_view("a_src", replace=True)
        b_src.create_view("b_src", replace=True)
        try:
            summary = _run(db, lake, a, b, a_src, b_src, compared, changes, key, keyless, pairs, use_buckets, top,
                           engine=engine, withhold=sensitive is not None, memory_limit=memory_limit)
            if sensitive is not None:
                withheld = int(query("diff/sensitive_count").rows(db.con)[0][0]) - summary.rows_a
                summary.withheld_sensitive = withheld
                summary.rows_a += withheld
                summary.removed += withheld
                if summary.provenance_rows == summary.removed:
                    summary.provenance_note = None
            if out is not None and fmt is not None:
                summary.out, summary.out_rows = out, _write_out(db, summary, compared, out, fmt)
        except duckdb.OutOfMemoryException:
            raise
        except duckdb.Error as exc:
            raise InputError(f"diff of {a_spec} and {b_spec} failed: {first_line(exc)}") from exc
    summary.seconds = time.perf_counter() - start
    return summary


def out_format(out: str) -> str:
    suffix = Path(out).suffix.lower()
    if suffix not in OUT_FORMATS:
        raise InputError(f"--out {out}: unknown format {suffix or '(no extension)'!r}; "
                         f"use one of {', '.join(OUT_FORMATS)}")
    check_user_path(out)
    return OUT_FORMATS[suffix]


def _read(db: Db, side: Side) -> duckdb.DuckDBPyRelation:
    try:
        return db.con.read_parquet([db.plain_path(p) for p in side.paths], union_by_name=side.version is None)
    except duckdb.Error as exc:
        raise InputError(f"{side.spec}: not readable as parquet ({first_line(exc)})") from exc


def _side_info(side: Side) -> dict[str, Any]:
    info: dict[str, Any] = {"spec": side.spec, "kind": side.kind, "files": len(side.paths)}
    if side.version is not None:
        info["version"] = side.version.name
        info["fingerprint"] = side.version.fingerprint.value
    return info


def _run(
    db: Db, lake: Lake, a: Side, b: Side, a_src: duckdb.DuckDBPyRelation, b_src: duckdb.DuckDBPyRelation,
    compared: list[Compared], changes: SchemaChanges, key: Sequence[str] | None, keyless: bool,
    pairs: list[tuple[str, str]], use_buckets: bool, top: int,
    engine: Engine | None = None, withhold: bool = False, memory_limit: str | None = None,
) -> DiffSummary:
    if not compared:
        raise InputError(f"{a.spec} and {b.spec} have no column in common; map them with --map A_COL=B_COL")
    by_name = {x.name: x for x in compared}
    key_cols: list[str] = []
    note: str | None = None
    side_rows: tuple[int, int] | None = None  # rows of each whole side, when a scan already counted them
    own_index = any(c.name == "file_index" for c in a.columns)  # A's own column hides DuckDB's file_index
    file_index = ConstantExpression(None) if own_index else ColumnExpression("file_index")

    def check(cols: list[str]) -> tuple[list[KeyProblem], tuple[int, int]]:
        keys = [by_name[k] for k in cols]
        if engine is None:
            return _check_key(db, a_src, b_src, keys)
        # on the engine, the key check comes with the differing keys (TEMP TABLE dk) of the same shuffle
        from relake.diff_dist import keyed_keys_on

        values = [x for x in compared if x.name not in cols]
        _keyed_views(a_src, b_src, keys, values, file_index)
        return keyed_keys_on(engine, db, lake, a, b, keys, values, with_f=not own_index,
                             withhold=withhold, memory_limit=memory_limit)

    if not keyless:
        if key is not None:
            key_cols = _explicit_key(key, by_name, pairs, a, b)
            problems, side_rows = check(key_cols)
            if problems:
                raise InputError(_key_refusal(key_cols, problems, _sensitive_key(key_cols, a)))
        else:
            key_cols, note, side_rows = _default_key(a, by_name, check)
            if engine is not None and not key_cols:
                raise InputError(f"no key to diff by ({note}); {KEYLESS_LOCAL_ONLY}: give --key COLUMNS "
                                 "or use --engine local")
    summary = DiffSummary(
        a=_side_info(a), b=_side_info(b), mode="keyed" if key_cols else "keyless", key=key_cols,
        key_note=note, compared=[x.name for x in compared],
        schema={
            "added": [{"name": c.name, "type": c.type} for c in changes.added],
            "removed": [{"name": c.name, "type": c.type} for c in changes.removed],
            "retyped": [{"name": n, "a": ta, "b": tb} for n, ta, tb in changes.retyped],
            "mapped": [{"a": x, "b": y} for x, y in changes.mapped],
        },
        hints=_role_hints(a, b, compared),
    )
    differing = _differing_buckets(a, b, pairs, use_buckets)
    if differing is not None:
        summary.buckets = {"compared": 256, "differing": len(differing), "equal": 256 - len(differing),
                           "scan_skipped": not differing}
    if differing == []:  # equal fingerprints: no row can differ, read none
        a_src = a_src.filter(ConstantExpression(False))
        b_src = b_src.filter(ConstantExpression(False))

    values = [x for x in compared if x.name not in key_cols]
    if key_cols:
        keys = [by_name[k] for k in key_cols]
        _keyed_views(a_src, b_src, keys, values, file_index)
        with ExitStack() as stack:
            if engine is None or differing == []:
                query("diff/keyed_keys").run(db.con)
            else:  # dk came from the engine's shuffle (check above); its rows are fetched there too
                from relake.diff_dist import keyed_rows_on

                stack.enter_context(keyed_rows_on(engine, db, lake, a, b, keys, values,
                                                  with_f=not own_index, withhold=withhold,
                                                  memory_limit=memory_limit))
            query("diff/keyed").run(db.con, columns=[x.name for x in values],
                                    pointers=[_pointer(x.name) for x in values])
    else:
        a_src.select(_struct(values, "a").alias("r"), file_index.alias("f")).create_view("a", replace=True)
        b_src.select(_struct(values, "b").alias("r")).create_view("b", replace=True)
        query("diff/keyless_buckets").run(db.con, mask=_BUCKET_MASK)
        if side_rows is None and differing != []:  # the buckets counted every row (unless none was read)
            rows = query("diff/keyless_rows").rows(db.con)[0]
            side_rows = int(rows[0]), int(rows[1])
        query("diff/keyless").run(db.con, mask=_BUCKET_MASK)
    if side_rows is None:  # views a_src / b_src: the whole sides, even when no row was read above
        rows = query("diff/side_rows").rows(db.con)[0]
        side_rows = int(rows[0]), int(rows[1])
    summary.rows_a, summary.rows_b = side_rows

    counts = {str(change): int(n) for change, n in query("diff/counts").rows(db.con)}
    summary.added, summary.removed, summary.changed = (counts.get(c, 0) for c in ("added", "removed", "changed"))
    summary.unchanged = summary.rows_a - summary.removed - summary.changed
    if key_cols:
        summary.column_changes = {str(c): int(n) for c, n in query("diff/column_changes").rows(db.con)}
    if summary.removed:
        _removal_breakdown(db, summary, a, key_cols, values, top)
    _provenance(db, lake, a, b, summary)
    return summary


def _explicit_key(
    key: Sequence[str], by_name: dict[str, Compared], pairs: list[tuple[str, str]], a: Side, b: Side
) -> list[str]:
    b_to_a = {y: x for x, y in pairs}
    out: list[str] = []
    for k in (k.strip() for k in key):
        if not k:
            continue
        name = k if k in by_name else b_to_a.get(k, k)
        if name not in by_name:
            where = "A" if any(c.name == k for c in a.columns) else "B" if any(c.name == k for c in b.columns) else ""
            extra = f" (only {where} has it; map it with --map)" if where else ""
            raise InputError(f"--key column {k!r} is not a column of both {a.spec} and {b.spec}{extra}")
        if name in out:
            raise InputError(f"--key names column {k!r} twice")
        out.append(name)
    return out


def _default_key(
    a: Side, by_name: dict[str, Compared], check: Callable[[list[str]], tuple[list[KeyProblem], tuple[int, int]]]
) -> tuple[list[str], str | None, tuple[int, int] | None]:
    """A's id column, else URL + caption, when present on both sides, unique and non-NULL; else keyless."""
    candidates: list[list[str]] = []
    if a.roles.id:
        candidates.append([a.roles.id])
    if a.roles.url and a.roles.caption:
        candidates.append([a.roles.url, a.roles.caption])
    reasons: list[str] = []
    for cand in candidates:
        if not all(c in by_name for c in cand):
            reasons.append(f"{'+'.join(cand)} is not on both sides")
            continue
        problems, side_rows = check(cand)
        if not problems:
            return cand, None, side_rows
        reasons.append(f"{'+'.join(cand)} is not a key: " + ", ".join(_problem_text(p) for p in problems))
    if not candidates:
        reasons.append("no id, URL or caption column found")
    return [], "keyless (multiset of rows): " + "; ".join(reasons), None


def _keyed_views(a_src: duckdb.DuckDBPyRelation, b_src: duckdb.DuckDBPyRelation, keys: list[Compared],
                 values: list[Compared], file_index: Expression) -> None:
    """Views ``a`` (k, r, f) and ``b`` (k, r) of a keyed diff: the key, the other compared values, A's file."""
    a_src.select(_key_expr(keys, "a").alias("k"), _struct(values, "a").alias("r"), file_index.alias("f")) \
        .create_view("a", replace=True)
    b_src.select(_key_expr(keys, "b").alias("k"), _struct(values, "b").alias("r")).create_view("b", replace=True)


def _check_key(
    db: Db, a_src: duckdb.DuckDBPyRelation, b_src: duckdb.DuckDBPyRelation, keys: list[Compared]
) -> tuple[list[KeyProblem], tuple[int, int]]:
    """Problems of the key on each side, and the rows of each side (counted in the same scan)."""
    a_src.select(_key_expr(keys, "a").alias("k")).create_view("a_keys", replace=True)
    b_src.select(_key_expr(keys, "b").alias("k")).create_view("b_keys", replace=True)
    problems = []
    rows = {}
    for side, dup_keys, dup_rows, null_rows, examples, n in query("diff/key_check").rows(db.con):
        rows[str(side)] = int(n)
        if dup_keys or null_rows:
            problems.append(KeyProblem(str(side).upper(), int(dup_keys), int(dup_rows), int(null_rows),
                                       [str(e) for e in examples]))
    return problems, (rows["a"], rows["b"])


def _problem_text(p: KeyProblem) -> str:
    parts = []
    if p.dup_keys:
        parts.append(f"{p.dup_keys:,} duplicated key value(s) on {p.dup_rows:,} rows in {p.side}")
    if p.null_rows:
        parts.append(f"{p.null_rows:,} row(s) with a NULL key in {p.side}")
    return ", ".join(parts)


def _sensitive_key(key_cols: Sequence[str], a: Side) -> bool:
    return any(c in (a.roles.url, a.roles.caption) for c in key_cols)


def _key_refusal(key_cols: list[str], problems: list[KeyProblem], sensitive: bool) -> str:
    parts = []
    for p in problems:
        text = _problem_text(p)
        if p.examples:
            text += (" (examples withheld: the key holds URLs or captions)" if sensitive
                     else f" (e.g. {', '.join(p.examples)})")
        parts.append(text)
    return (f"cannot diff by key {'+'.join(key_cols)}: {'; '.join(parts)}; "
            "use --keyless (rows as a multiset) or another --key")


def _source(x: Compared, side: str) -> Expression:
    e = ColumnExpression(x.a if side == "a" else x.b)
    return e.cast(_VARCHAR) if x.as_text else e


def _key_expr(keys: Sequence[Compared], side: str) -> Expression:
    """A single key column as itself; several as a STRUCT (A's names). Parts of a STRUCT key match NULL-safely
    (NULL equals NULL, e.g. a NULL caption in url+caption); the key is NULL only when every part is."""
    if len(keys) == 1:
        return _source(keys[0], side)
    all_null = _source(keys[0], side).isnull()
    for x in keys[1:]:
        all_null = all_null & _source(x, side).isnull()
    packed = FunctionExpression("struct_pack", *[_source(x, side).alias(x.name) for x in keys])
    return CaseExpression(all_null, ConstantExpression(None)).otherwise(packed)


def _struct(values: Sequence[Compared], side: str) -> Expression:
    if not values:
        return ConstantExpression(None)
    return FunctionExpression("struct_pack", *[_source(x, side).alias(x.name) for x in values])


def _pointer(name: str) -> str:
    """RFC 6901 JSON pointer to a top-level field."""
    return "/" + name.replace("~", "~0").replace("/", "~1")


def _fp_usable(fp: Fingerprint) -> bool:
    return fp.algorithm == ALGORITHM and bool(fp.buckets) and sum(n for n, _ in fp.buckets.values()) == fp.rows


def _differing_buckets(a: Side, b: Side, pairs: list[tuple[str, str]], use_buckets: bool) -> list[str] | None:
    """Buckets whose (rows, sum) differ between the two manifests; None when bucket skipping does not apply
    (not two versions, different schemas, mapped columns, or nothing to skip)."""
    if not use_buckets or a.version is None or b.version is None or pairs:
        return None
    if a.columns != b.columns or not (_fp_usable(a.version.fingerprint) and _fp_usable(b.version.fingerprint)):
        return None
    fa, fb = a.version.fingerprint.buckets, b.version.fingerprint.buckets
    return sorted(k for k in set(fa) | set(fb) if fa.get(k) != fb.get(k))


def _removal_breakdown(
    db: Db, summary: DiffSummary, a: Side, key_cols: list[str], values: list[Compared], top: int
) -> None:
    url = a.roles.url
    pointer: str | None = None
    if url and url in key_cols:
        pointer = "/k" if len(key_cols) == 1 else "/k" + _pointer(url)
    elif url and url in {x.name for x in values}:
        pointer = "/r" + _pointer(url)
    if pointer is not None:
        summary.removed_by_domain = [
            (None if h is None else str(h), int(n))
            for h, n in query("diff/removed_domains").rows(db.con, url_pointer=pointer, top=top)
        ]
    for f, n in query("diff/removed_shards").rows(db.con):
        entry: dict[str, Any] = {"rows": int(n)}
        if f is not None and 0 <= int(f) < len(a.paths):
            entry["shard"] = int(f)
            entry["file"] = a.file_label(int(f))
        else:
            entry["shard"] = None
            entry["file"] = None
        summary.removed_by_shard.append(entry)


def _chain_files(lake: Lake, a: Side, b: Side) -> list[Path] | None:
    """The removed.parquet of every build from A to B, when B descends from A through derived versions."""
    if a.version is None or b.version is None or b.folder is None or b.version.kind != "derived":
        return None
    files: list[Path] = []
    current, folder = b.version, b.folder
    for _ in range(_MAX_CHAIN):
        if not (folder / REMOVED_FILE).is_file():
            return None
        files.append(folder / REMOVED_FILE)
        if current.parent is None:
            return None
        if current.parent == a.version.name:
            return files
        try:
            current = lake.load_version(current.parent)
        except NotFoundError:
            return None
        folder = lake.version_dir(current.name)
        if current.kind != "derived":
            return None
    return None


def _sensitive_removals(db: Db, lake: Lake, a: Side, b: Side) -> duckdb.DuckDBPyRelation | None:
    """Rows removed from A by a sensitive rule (their raw URL, or key when A has no URL column): withheld
    from the row-level diff, its output file and the domain breakdown, so no diff ever shows them."""
    files = _chain_files(lake, a, b)
    if not files:
        return None
    try:
        rel = db.con.read_parquet([db.plain_path(p) for p in files], union_by_name=True)
    except duckdb.Error:
        return None
    if "sensitive" not in rel.columns:
        return None
    col = "url" if a.roles.url is not None else "key"
    if col not in rel.columns or (col == "key" and a.roles.id is None):
        return None
    sens = rel.filter(ColumnExpression("sensitive")).select(ColumnExpression(col).alias("relake_sensitive"))
    sens.create_view("sensitive_removed", replace=True)
    return db.con.table("sensitive_removed")


def _without(src: duckdb.DuckDBPyRelation, side: Side, sensitive: duckdb.DuckDBPyRelation) -> duckdb.DuckDBPyRelation:
    col = side.roles.url if side.roles.url is not None else side.roles.id
    if col is None:
        return src
    cond = ColumnExpression(col).cast(duckdb.sqltypes.VARCHAR) == ColumnExpression("relake_sensitive")
    return src.join(sensitive, cond, how="anti")


def _provenance(db: Db, lake: Lake, a: Side, b: Side, summary: DiffSummary) -> None:
    """Removals by rule and category when B was built from A (through any chain of derived versions) and each
    build recorded ``removed.parquet`` with ``rules`` and ``categories`` list columns. Skipped otherwise."""
    if a.version is None or b.version is None or b.folder is None or b.version.kind != "derived":
        return
    files: list[Path] = []
    current, folder = b.version, b.folder
    for _ in range(_MAX_CHAIN):
        removed = folder / REMOVED_FILE
        if not removed.is_file():
            summary.provenance_note = f"version {current.name} has no {REMOVED_FILE}; removals by rule unknown"
            return
        files.append(removed)
        if current.parent is None:
            return  # B does not descend from A
        if current.parent == a.version.name:
            break
        try:
            current = lake.load_version(current.parent)
        except NotFoundError:
            return
        folder = lake.version_dir(current.name)
        if current.kind != "derived":
            return
    else:
        return
    try:
        rel = db.con.read_parquet([db.plain_path(p) for p in files], union_by_name=True)
        types = dict(zip(rel.columns, (str(t) for t in rel.dtypes), strict=True))
        if types.get("rules") != "VARCHAR[]" or types.get("categories") != "VARCHAR[]":
            summary.provenance_note = f"{REMOVED_FILE} lacks rules/categories list columns; removals by rule skipped"
            return
        rel.select(ColumnExpression("rules"), ColumnExpression("categories")).create_view("prov", replace=True)
        by_rule: dict[str, int] = {}
        by_category: dict[str, int] = {}
        for what, name, n in query("diff/provenance").rows(db.con):
            (by_rule if what == "rule" else by_category)[str(name)] = int(n)
        recorded = int(query("diff/provenance_rows").rows(db.con)[0][0])
    except duckdb.Error as exc:
        summary.provenance_note = f"cannot read {REMOVED_FILE} ({first_line(exc)}); removals by rule skipped"
        return
    summary.removed_by_rule, summary.removed_by_category = by_rule, by_category
    summary.provenance_rows = recorded
    if recorded != summary.removed:
        summary.provenance_note = (f"the builds recorded {recorded:,} removed rows; this diff finds "
                                   f"{summary.removed:,} (compared columns or keys differ from the builds')")


def _write_out(db: Db, summary: DiffSummary, compared: list[Compared], out: str, fmt: str) -> int:
    """COPY the differing rows, flattened and sorted by key, to a temp file beside ``out``, then rename."""
    values = [x.name for x in compared if x.name not in summary.key]
    rel = db.con.sql(query("diff/rows_keyed" if summary.key else "diff/rows_keyless").text)
    cols: list[Expression] = []
    if not summary.key:
        cols.append(ColumnExpression("row_md5"))
    elif len(summary.key) == 1:
        cols.append(ColumnExpression("k").alias(summary.key[0]))
    else:
        cols += [FunctionExpression("struct_extract", ColumnExpression("k"), ConstantExpression(k)).alias(k)
                 for k in summary.key]
    changed: Expression = ColumnExpression("changed_columns")
    if fmt == "diff/write_csv":
        changed = FunctionExpression("array_to_string", changed, ConstantExpression(","))
    cols += [ColumnExpression("change"), changed.alias("changed_columns")]
    for prefix, struct in (("before_", "a_r"), ("after_", "b_r")):
        cols += [FunctionExpression("struct_extract", ColumnExpression(struct), ConstantExpression(v)).alias(prefix + v)
                 for v in values]
    names = [c.get_name() for c in cols]
    lowered = [n.lower() for n in names]
    clash = sorted({n for n in names if lowered.count(n.lower()) > 1})
    if clash:
        raise InputError(f"cannot write --out: output column {clash[0]!r} would appear twice "
                         "(a key column named like an output column); rename it with --map")
    rel.select(*cols).create_view("diff_out", replace=True)
    target = Path(out).absolute()
    if target.is_dir():
        raise InputError(f"--out {out}: is a folder")
    if not target.parent.is_dir():
        raise NotFoundError(f"--out {out}: folder {target.parent} does not exist")
    tmp = target.parent / f".{target.name}.{secrets.token_hex(4)}.tmp"
    try:
        query(fmt).run(db.con, path=str(tmp))
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return summary.added + summary.removed + summary.changed


# ----------------------------------------------------------------------------------------- fingerprint


@dataclass(frozen=True)
class FingerprintReport:
    target: str
    kind: str  # "version" | "files"
    source: str  # "computed" | "manifest"
    fingerprint: Fingerprint
    manifest_matches: bool | None  # computed for a version: does it equal the manifest's?
    seconds: float

    def to_dict(self, buckets: bool = False) -> dict[str, Any]:
        fp = self.fingerprint
        data: dict[str, Any] = {"target": self.target, "kind": self.kind, "source": self.source,
                                "algorithm": fp.algorithm, "rows": fp.rows, "fingerprint": fp.value,
                                "manifest_matches": self.manifest_matches, "seconds": round(self.seconds, 3)}
        if buckets:
            data["buckets"] = {k: {"rows": n, "value": v} for k, (n, v) in fp.buckets.items()}
        return data


def fingerprint_target(
    lake: Lake, spec: str, *, from_manifest: bool = False, memory_limit: str | None = None
) -> FingerprintReport:
    """The fingerprint of a version (recomputed, or read from its manifest) or of any parquet set."""
    start = time.perf_counter()
    with connect(lake, memory_limit=memory_limit) as db:
        side = resolve_side(lake, db, spec)
        if from_manifest:
            if side.version is None:
                raise InputError(f"{spec}: --from-manifest needs a version (a name, or a folder with "
                                 f"{VERSION_FILE}); plain parquet files have no manifest")
            return FingerprintReport(spec, side.kind, "manifest", side.version.fingerprint, None,
                                     time.perf_counter() - start)
        _read(db, side).create_view("src", replace=True)
        try:
            fp = fingerprint_src(db)
        except duckdb.OutOfMemoryException:
            raise
        except duckdb.Error as exc:
            raise InputError(f"{spec}: cannot scan ({first_line(exc)})") from exc
    matches = None
    if side.version is not None:
        mf = side.version.fingerprint
        matches = (mf.rows, mf.value) == (fp.rows, fp.value)
    return FingerprintReport(spec, side.kind, "computed", fp, matches, time.perf_counter() - start)
