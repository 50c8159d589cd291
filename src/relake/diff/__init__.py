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

The package: ``columns`` (the column layout and the projections to ``k`` and ``r``), ``local`` (the comparisons
on the driver's DuckDB), ``shuffle`` (the key comparison as map and reduce jobs on an engine, ``--engine ray``),
``report`` (the summary and ``--out``); this module chooses the key and runs them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import duckdb
from duckdb import ColumnExpression, ConstantExpression

from relake.db import Db, connect
from relake.diff.columns import (
    Compared,
    KeyProblem,
    SchemaChanges,
    compare_layout,
    parse_maps,
    role_hints,
)
from relake.diff.local import (
    check_key,
    compare_keyed,
    compare_keyless,
    differing_buckets,
    keyed_views,
    narrowed_tables,
    provenance,
    recorded_unique,
    sensitive_removals,
    side_records,
    without,
)
from relake.diff.report import OUT_FORMATS, DiffSummary, example_rows, out_format, removal_breakdown, write_out
from relake.diff.shuffle import keyed_keys_on, keyed_rows_on
from relake.engine import Engine
from relake.errors import InputError, RelakeError, duckdb_errors
from relake.identity import REMOVED_FILE, record_state
from relake.lake import Lake
from relake.sources import Side, lineage_pair, read_side, resolve_side
from relake.sql import query

__all__ = [
    "KEYLESS_LOCAL_ONLY", "OUT_FORMATS", "REMOVED_FILE", "Compared", "DiffSummary", "KeyProblem", "SchemaChanges",
    "compare_layout", "diff_versions", "out_format", "parse_maps",
]

KEYLESS_LOCAL_ONLY = "a keyless diff runs on the local engine only"


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
    verify: bool = False,
    limit: int = 0,
) -> DiffSummary:
    """Diff A against B (version names or parquet paths); write the full diff to ``out`` when given.

    With ``engine`` (e.g. Ray), a keyed diff checks the key, compares keys and row hashes and fetches the rows of
    the differing keys in map, reduce and fetch jobs on it (``relake.diff.shuffle``); the exact comparison of those
    rows and everything else runs here, and the summary, output and errors are the same. ``limit``: example rows
    of each change kept in the summary (``examples``; never a withheld row)."""
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
        a = resolve_side(lake, db, a_spec, verify=verify)
        b = resolve_side(lake, db, b_spec, verify=verify)
        compared, changes = compare_layout(a, b, pairs)
        a_src = read_side(db, a)
        b_src = read_side(db, b)
        sensitive = sensitive_removals(db, lake)
        if sensitive is not None:
            a_src.create_view("a_all", replace=True)
            b_src.create_view("b_all", replace=True)
            a_src, b_src = (without(src, side, sensitive) for src, side in ((a_src, a), (b_src, b)))
        a_src.create_view("a_src", replace=True)
        b_src.create_view("b_src", replace=True)
        with duckdb_errors(f"diff of {a_spec} and {b_spec} failed:"):
            # a version against its ancestor or descendant over one root (a vector version): only the rows one
            # side's deletion vector drops can differ; no rows withheld (they would need every row's URL)
            narrowed = lineage_pair(db, a, b) if engine is None and not pairs and sensitive is None else None
            chain = side_records(lake, a, b)  # the builds from A to B, if any (each removed.parquet checked once)
            summary = _run(db, lake, a, b, a_src, b_src, compared, changes, key, keyless, pairs, use_buckets, top,
                           engine=engine, withhold=sensitive is not None, memory_limit=memory_limit,
                           narrowed=narrowed, examples=None if out is not None else limit, chain=chain)
            if sensitive is not None:
                all_a, all_b = query("diff/sensitive_count").rows(db.con)[0]
                summary.count_withheld(int(all_a) - summary.rows_a, int(all_b) - summary.rows_b)
            provenance(db, summary, chain)  # after the withheld rows are counted: it compares the totals
            example_rows(db, summary, limit)
            if out is not None and fmt is not None:
                summary.out, summary.out_rows = out, write_out(db, summary, compared, out, fmt, a.roles)
    summary.seconds = time.perf_counter() - start
    summary.unchecked = [n for n in (a.unchecked_note, b.unchecked_note) if n is not None]
    return summary



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
    narrowed: tuple[duckdb.DuckDBPyRelation, duckdb.DuckDBPyRelation] | None = None,
    examples: int | None = None,
    chain: tuple[list[Path], list[str]] | str | None = None,
) -> DiffSummary:
    """``narrowed``: the rows only A and only B hold (``sources.lineage_pair``); then the key is still checked on
    the whole sides (its columns only, unless the root's record says it is a key) and only these rows are
    compared: with ``examples`` (not None) only the summary's columns of every row, and the whole row of the
    examples shown (``narrowed_tables``); else every row whole, for ``--out``."""
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
        if engine is None and narrowed is not None and a.version is not None and b.version is not None:
            # one side's rows are a subset of the other's (the same root rows, fewer dropped): a key unique and
            # never NULL on the larger side is so on the smaller, so only the larger is scanned
            if _root_key(lake, a if b.version.rows <= a.version.rows else b, keys):
                return [], (a.version.rows, b.version.rows)  # the root's ingest found it a key of every row
            none = ConstantExpression(False)
            if b.version.rows <= a.version.rows:
                return check_key(db, a_src, b_src.filter(none), keys)
            return check_key(db, a_src.filter(none), b_src, keys)
        if engine is None:
            return check_key(db, a_src, b_src, keys)
        # on the engine, the key check comes with the differing keys (TEMP TABLE dk) of the same shuffle
        values = [x for x in compared if x.name not in cols]
        keyed_views(a_src, b_src, keys, values, file_index)
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
        hints=role_hints(a, b, compared),
    )
    differing = differing_buckets(a, b, pairs, use_buckets) if narrowed is None else None
    if differing is not None:
        summary.buckets = {"compared": 256, "differing": len(differing), "equal": 256 - len(differing),
                           "scan_skipped": not differing}
    if differing == []:  # equal fingerprints: no row can differ, read none
        a_src = a_src.filter(ConstantExpression(False))
        b_src = b_src.filter(ConstantExpression(False))

    values = [x for x in compared if x.name not in key_cols]
    if narrowed is not None:  # read once (by position: few rows), kept as tables with their file index
        narrowed_tables(db, a, narrowed, [by_name[k] for k in key_cols], a.roles.url,
                        examples if key_cols else None, _records(lake, a, b, chain))
        a_src, b_src = db.con.table("relake_only_a"), db.con.table("relake_only_b")
        assert a.version is not None and b.version is not None
        side_rows = a.version.rows, b.version.rows  # from the records (the shards' identities were checked)
    if key_cols:
        keys = [by_name[k] for k in key_cols]
        keyed_views(a_src, b_src, keys, values, file_index)
        engine_rows = None
        if engine is not None and differing != []:  # dk came from the engine's shuffle (check above)
            engine_rows = keyed_rows_on(engine, db, lake, a, b, keys, values, with_f=not own_index,
                                        withhold=withhold, memory_limit=memory_limit)
        compare_keyed(db, values, engine_rows)
    else:
        counted = compare_keyless(db, a_src, b_src, values, file_index,
                                  count_rows=side_rows is None and differing != [])  # unless none was read
        side_rows = counted if counted is not None else side_rows
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
        removal_breakdown(db, summary, a, key_cols, values, top)
    return summary



def _records(lake: Lake, a: Side, b: Side, a_to_b: tuple[list[Path], list[str]] | str | None
             ) -> tuple[list[Path], int] | None:
    """The removal records of the builds from one side to the other when one descends from the other and each
    build's record is checked (``a_to_b``: ``local.side_records`` of A and B; else those of B and A), with the
    number of rows the sides differ by."""
    if a.version is None or b.version is None:
        return None
    chain = a_to_b if isinstance(a_to_b, tuple) else side_records(lake, b, a)
    if not isinstance(chain, tuple):
        return None
    files, unrecorded = chain
    if unrecorded or any(record_state(lake, f.parent) != "same" for f in files):
        return None  # (a record edited since written could vouch for an edited removed.parquet)
    return files, abs(a.version.rows - b.version.rows)


def _root_key(lake: Lake, side: Side, keys: list[Compared]) -> bool:
    """Whether the record of ``side``'s lineage root (itself, or the version its deletion vector drops rows of)
    says ``keys`` are a key of all the root's rows, which ``side``'s rows are a subset of."""
    if side.version is None or any(k.as_text or k.a != k.b or k.a != k.name for k in keys):
        return False
    try:
        root = side.version if side.version.vector is None else lake.load_version(side.version.vector.root)
    except RelakeError:
        return False  # then the key is checked by a scan, as for any pair
    return [s.sha256 for s in root.shards] == [s.sha256 for s in side.version.shards] and \
        recorded_unique(root, [k.name for k in keys]) and record_state(lake, lake.version_dir(root.name)) == "same"


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
