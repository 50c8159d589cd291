"""The local implementation of a diff, on the driver's DuckDB (see ``relake.diff`` for how it works): the key
check, the keyed and keyless comparisons into TEMP TABLE ``d``, the skip by manifest buckets, and the lineage
of B from A through ``removed.parquet`` (rows withheld for a sensitive rule; removals by rule and category).
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager, ExitStack
from pathlib import Path
from typing import Any

import duckdb
from duckdb import ColumnExpression, ConstantExpression, Expression, FunctionExpression, StarExpression

from relake.db import Db
from relake.diff.columns import BARE, Compared, KeyProblem, json_pointer, key_expr, struct_expr, withhold
from relake.diff.report import DiffSummary
from relake.errors import InputError, NotFoundError, duckdb_errors
from relake.fingerprint import is_current
from relake.identity import REMOVED_FILE, check_owned
from relake.lake import Lake
from relake.record import Fingerprint, Version
from relake.sources import Side
from relake.sql import query
from relake.vectors import rows_at

_MAX_CHAIN = 1000
_BIGINT = duckdb.sqltypes.BIGINT
_HYDRATE_MAX = 1000  # narrowed_tables: more examples than this are read with every row (a scan either way)
_LIGHT, _FI, _FR = "relake_light", "relake_file_index", "relake_file_row_number"  # narrowed_tables
_RS, _RP, _RU, _MISSING = "relake_rec_shard", "relake_rec_position", "relake_rec_url", "relake_rec_missing"
_BUCKET_MASK = (1 << 18) - 1  # keyless: 262,144 hash buckets, compared before any row is grouped


def keyed_views(a_src: duckdb.DuckDBPyRelation, b_src: duckdb.DuckDBPyRelation, keys: list[Compared],
                 values: list[Compared], file_index: Expression) -> None:
    """Views ``a`` (k, r, f) and ``b`` (k, r) of a keyed diff: the key, the other compared values, A's file."""
    a_src.select(key_expr(keys, "a").alias("k"), struct_expr(values, "a").alias("r"), file_index.alias("f")) \
        .create_view("a", replace=True)
    b_src.select(key_expr(keys, "b").alias("k"), struct_expr(values, "b").alias("r")).create_view("b", replace=True)


def check_key(
    db: Db, a_src: duckdb.DuckDBPyRelation, b_src: duckdb.DuckDBPyRelation, keys: list[Compared]
) -> tuple[list[KeyProblem], tuple[int, int]]:
    """Problems of the key on each side, and the rows of each side (counted in the same scan)."""
    a_src.select(key_expr(keys, "a").alias("k")).create_view("a_keys", replace=True)
    b_src.select(key_expr(keys, "b").alias("k")).create_view("b_keys", replace=True)
    problems = []
    rows = {}
    for side, dup_keys, dup_rows, null_rows, examples, n in query("diff/key_check").rows(db.con):
        rows[str(side)] = int(n)
        if dup_keys or null_rows:
            problems.append(KeyProblem(str(side).upper(), int(dup_keys), int(dup_rows), int(null_rows),
                                       [str(e) for e in examples]))
    return problems, (rows["a"], rows["b"])



KEY_FACTS = "keys"  # a version's ``stats`` entry: what its rows' scan found about a key (ingest: the id column)


def key_facts(db: Db, rel: duckdb.DuckDBPyRelation, keys: list[Compared]) -> dict[str, Any]:
    """What ``check_key`` finds about ``keys`` on ``rel`` (a version's whole rows), as its record keeps it:
    ``{"columns", "rows", "dup_keys", "null_rows"}``."""
    problems, (rows, _) = check_key(db, rel, rel.filter(ConstantExpression(False)), keys)
    found = problems[0] if problems else None
    return {"columns": [k.name for k in keys], "rows": rows, "dup_keys": found.dup_keys if found else 0,
            "null_rows": found.null_rows if found else 0}


def recorded_unique(version: Version, columns: Sequence[str]) -> bool:
    """Whether ``version``'s record says these columns (in this order) are a key of all its rows: no value on
    two rows, none NULL (``key_facts`` of its ingest)."""
    entries = version.stats.get(KEY_FACTS)
    for entry in entries if isinstance(entries, list) else ():
        if isinstance(entry, dict) and entry.get("columns") == list(columns):
            return entry.get("rows") == version.rows and entry.get("dup_keys") == 0 and entry.get("null_rows") == 0
    return False


def narrowed_tables(db: Db, side: Side, narrowed: tuple[duckdb.DuckDBPyRelation, duckdb.DuckDBPyRelation],
                    keys: list[Compared], url: str | None, examples: int | None,
                    records: tuple[list[Path], int] | None = None) -> None:
    """TEMP TABLEs ``relake_only_a`` and ``relake_only_b`` (every column and ``file_index``) from the rows only
    one side of a lineage pair holds (``sources.lineage_pair``: one of them empty, all added or all removed).

    A parquet file cannot give scattered rows without reading every page holding them, and 0.05% of rows
    spread over a shard hit every page: reading the whole removed rows costs a scan of every column. So with
    ``examples`` (not None) only the key and ``url`` columns are read for every row (all a summary counts),
    and the whole row only for the ``examples`` rows of lowest key (those the summary shows: ``examples_keyed``
    orders by key), read by position from the row groups holding them; the other columns of the other rows
    are NULL and never shown. ``examples`` None (``--out``: every row is written) or above ``_HYDRATE_MAX``:
    every row whole.

    ``records``: the ``removed.parquet`` of the builds between the sides (``removal_records``, each checked
    against its sha256) and how many rows differ. Each lists the rows its build dropped, by root position,
    with the URL as text, read from the base when it was built: a VARCHAR URL is taken from there, not from
    the shards' URL column (the largest), when they name exactly the differing rows; else it is read."""
    for rel, table in zip(narrowed, ("relake_only_a", "relake_only_b"), strict=True):
        if examples is None or examples > _HYDRATE_MAX:
            rel.select(StarExpression(), ColumnExpression("file_index").alias("file_index")).create(table)
            continue
        names = list(rel.columns)
        types = dict(zip(names, rel.dtypes, strict=True))
        kept = [c for c in names if c in {*(k.a for k in keys), url}]
        if not (records is not None and url in kept and url not in {k.a for k in keys}
                and str(types[url]) == "VARCHAR" and _light_from_records(db, rel, kept, url, records)):
            rel.select(*(ColumnExpression(c) for c in kept), ColumnExpression("file_index").alias(_FI),
                       ColumnExpression("file_row_number").alias(_FR)).create(_LIGHT)
        lit = db.con.table(_LIGHT)
        chosen: dict[int, list[int]] = {}
        for fi, fr in lit.sort(key_expr(keys, "a")).limit(examples).select(
                ColumnExpression(_FI), ColumnExpression(_FR)).fetchall():
            chosen.setdefault(int(fi), []).append(int(fr))
        shown: Expression = ConstantExpression(False)
        for fi, positions in chosen.items():
            shown = shown | ((ColumnExpression(_FI) == ConstantExpression(fi))
                             & ColumnExpression(_FR).isin(*(ConstantExpression(p) for p in positions)))
        whole = lit.filter(~shown).select(
            *(ColumnExpression(c) if c in kept else ConstantExpression(None).cast(types[c]).alias(c) for c in names),
            ColumnExpression(_FI).cast(_BIGINT).alias("file_index"))
        examples_whole = rows_at(db, side.paths, chosen)
        if examples_whole is not None:  # (by name: a union matches columns by position)
            whole = examples_whole.select(*(ColumnExpression(c) for c in names),
                                          ColumnExpression("file_index")).union(whole)
        whole.create(table)
        query("diff/drop_light").run(db.con)


def _light_from_records(db: Db, rel: duckdb.DuckDBPyRelation, kept: list[str], url: str,
                        records: tuple[list[Path], int]) -> bool:
    """TEMP TABLE ``_LIGHT`` of ``narrowed_tables`` with the URL from the builds' records; False (and no table)
    unless they name every differing row exactly once."""
    files, differing = records
    recs = db.con.read_parquet([db.plain_path(p) for p in files], union_by_name=True)
    if not {"shard", "position", "url"} <= set(recs.columns):
        return False
    recs = recs.select(ColumnExpression("shard").cast(_BIGINT).alias(_RS),
                       ColumnExpression("position").cast(_BIGINT).alias(_RP), ColumnExpression("url").alias(_RU))
    light = rel.select(*(ColumnExpression(c) for c in kept if c != url),
                       ColumnExpression("file_index").cast(_BIGINT).alias(_FI),
                       ColumnExpression("file_row_number").cast(_BIGINT).alias(_FR))
    at = (ColumnExpression(_FI) == ColumnExpression(_RS)) & (ColumnExpression(_FR) == ColumnExpression(_RP))
    light.join(recs, at, how="left").select(
        *(ColumnExpression(_RU).alias(c) if c == url else ColumnExpression(c) for c in kept),
        ColumnExpression(_FI), ColumnExpression(_FR), ColumnExpression(_RS).isnull().alias(_MISSING)).create(_LIGHT)
    table = db.con.table(_LIGHT)
    rows = table.count("*").fetchall()[0][0]
    missing = table.filter(ColumnExpression(_MISSING)).count("*").fetchall()[0][0]
    if rows == differing and missing == 0:
        return True
    query("diff/drop_light").run(db.con)
    return False


def compare_keyed(db: Db, values: list[Compared], engine_rows: AbstractContextManager[None] | None = None) -> None:
    """TEMP TABLE ``d`` of a keyed diff from views ``a`` (k, r, f) and ``b`` (k, r): the differing keys (TEMP
    TABLE ``dk``, by one FULL OUTER hash join on ``(k, hash(r), f)``), then their rows compared exactly.

    ``engine_rows``: ``dk`` came from an engine's shuffle, and while open this replaces views ``a`` and ``b``
    by the rows of its keys only (``diff.shuffle.keyed_rows_on``)."""
    with ExitStack() as stack:
        if engine_rows is None:
            query("diff/keyed_keys").run(db.con)
        else:
            stack.enter_context(engine_rows)
        query("diff/keyed").run(db.con, columns=[x.name for x in values],
                                pointers=[json_pointer(x.name) for x in values])


def compare_keyless(db: Db, a_src: duckdb.DuckDBPyRelation, b_src: duckdb.DuckDBPyRelation, values: list[Compared],
            file_index: Expression, count_rows: bool) -> tuple[int, int] | None:
    """TEMP TABLE ``d`` of a keyless diff (whole rows as a multiset, through hash buckets); with ``count_rows``
    also the rows of each side, which the buckets counted."""
    a_src.select(struct_expr(values, "a").alias("r"), file_index.alias("f")).create_view("a", replace=True)
    b_src.select(struct_expr(values, "b").alias("r")).create_view("b", replace=True)
    query("diff/keyless_buckets").run(db.con, mask=_BUCKET_MASK)
    side_rows = None
    if count_rows:
        rows = query("diff/keyless_rows").rows(db.con)[0]
        side_rows = int(rows[0]), int(rows[1])
    query("diff/keyless").run(db.con, mask=_BUCKET_MASK)
    return side_rows


def _fp_usable(fp: Fingerprint) -> bool:
    return is_current(fp.algorithm) and bool(fp.buckets) and sum(n for n, _ in fp.buckets.values()) == fp.rows


def differing_buckets(a: Side, b: Side, pairs: list[tuple[str, str]], use_buckets: bool) -> list[str] | None:
    """Buckets whose (rows, sum) differ between the two manifests; None when bucket skipping does not apply
    (not two versions, files not confirmed as the recorded ones, different schemas, mapped columns, or nothing
    to skip)."""
    if not use_buckets or a.version is None or b.version is None or pairs or not (a.trusted and b.trusted):
        return None  # (a record without file identities is read, not trusted: identity.check_unchanged)
    if a.columns != b.columns or not (_fp_usable(a.version.fingerprint) and _fp_usable(b.version.fingerprint)):
        return None
    fa, fb = a.version.fingerprint.buckets, b.version.fingerprint.buckets
    return sorted(k for k in set(fa) | set(fb) if fa.get(k) != fb.get(k))



def sensitive_removals(db: Db, lake: Lake) -> duckdb.DuckDBPyRelation | None:
    """Every value (raw URL, and key) of a row that a sensitive rule removed in any build of this lake: withheld
    from every diff run against this lake, whichever way round and however its sides are named (versions, their
    folders, or any parquet files), from its row output, its tables and its examples; counted, never shown."""
    if not lake.versions_dir.is_dir():
        return None
    files: list[Path] = []
    for name in lake.version_names():
        folder = lake.version_dir(name)
        if (folder / REMOVED_FILE).is_file():
            check_owned(lake.load_version(name), folder, require_record=False)  # its sha256, when recorded
            files.append(folder / REMOVED_FILE)
    if not files:
        return None
    with duckdb_errors(f"cannot read the lake's {REMOVED_FILE} files (sensitive removals are withheld from every "
                       "diff; run relake verify)"):
        rel = db.con.read_parquet([db.plain_path(p) for p in files], union_by_name=True)
        if "sensitive" not in rel.columns:
            return None
        values = [ColumnExpression(c).cast(duckdb.sqltypes.VARCHAR).alias("relake_sensitive")
                  for c in ("url", "key") if c in rel.columns]
        if not values:
            return None
        sens = rel.filter(ColumnExpression("sensitive"))
        union = sens.select(values[0])
        for v in values[1:]:
            union = union.union(sens.select(v))
        if "key" in rel.columns:  # keys of rows without a URL: the only value that names them
            bare = sens.filter(ColumnExpression("url").isnull()) if "url" in rel.columns else sens
            union = union.union(bare.select(FunctionExpression(
                "concat", ConstantExpression(BARE), ColumnExpression("key").cast(duckdb.sqltypes.VARCHAR)
            ).alias("relake_sensitive")))
        union.filter(ColumnExpression("relake_sensitive").isnotnull()).distinct().create_view(
            "sensitive_removed", replace=True)
        if not db.con.table("sensitive_removed").limit(1).fetchall():
            return None
    return db.con.table("sensitive_removed")


def without(src: duckdb.DuckDBPyRelation, side: Side, sensitive: duckdb.DuckDBPyRelation) -> duckdb.DuckDBPyRelation:
    return withhold(src, side.roles.url, side.roles.id, sensitive)


def removal_records(lake: Lake, a: Version, b: Version, b_folder: Path) -> tuple[list[Path], list[str]] | str | None:
    """The ``removed.parquet`` of every build from A to B (B's first), when B was built from A through a chain of
    derived versions, and the names of those whose file has no recorded sha256; a note when a build of the
    chain recorded none; None when B does not descend from A."""
    files: list[Path] = []
    unrecorded: list[str] = []
    current, folder = b, b_folder
    for _ in range(_MAX_CHAIN):
        if current.kind != "derived":
            return None
        removed = folder / REMOVED_FILE
        if not removed.is_file():
            return f"version {current.name} has no {REMOVED_FILE}; removals by rule unknown"
        if not check_owned(current, folder, require_record=False):
            unrecorded.append(current.name)
        files.append(removed)
        if current.parent is None:
            return None
        if current.parent == a.name:
            return files, unrecorded
        try:
            current = lake.load_version(current.parent)
        except NotFoundError:
            return None
        folder = lake.version_dir(current.name)
    return None


def side_records(lake: Lake, a: Side, b: Side) -> tuple[list[Path], list[str]] | str | None:
    """``removal_records`` from side A to side B (None unless both are lake versions)."""
    if a.version is None or b.version is None or b.folder is None:
        return None
    return removal_records(lake, a.version, b.version, b.folder)


def provenance(db: Db, summary: DiffSummary, chain: tuple[list[Path], list[str]] | str | None) -> None:
    """Removals by rule and category when B was built from A (through any chain of derived versions: ``chain``,
    ``side_records`` of A and B) and each build recorded ``removed.parquet`` with ``rules`` and ``categories``
    list columns. Skipped otherwise."""
    if isinstance(chain, str):
        summary.provenance_note = chain
    if not isinstance(chain, tuple):
        return
    files, unrecorded = chain
    try:
        with duckdb_errors(f"cannot read {REMOVED_FILE}"):
            rel = db.con.read_parquet([db.plain_path(p) for p in files], union_by_name=True)
            types = dict(zip(rel.columns, (str(t) for t in rel.dtypes), strict=True))
            if types.get("rules") != "VARCHAR[]" or types.get("categories") != "VARCHAR[]":
                summary.provenance_note = (f"{REMOVED_FILE} lacks rules/categories list columns; removals by rule "
                                           "skipped")
                return
            rel.select(ColumnExpression("rules"), ColumnExpression("categories")).create_view("prov", replace=True)
            by_rule: dict[str, int] = {}
            by_category: dict[str, int] = {}
            for what, name, n in query("diff/provenance").rows(db.con):
                (by_rule if what == "rule" else by_category)[str(name)] = int(n)
            recorded = int(query("diff/provenance_rows").rows(db.con)[0][0])
    except InputError as err:  # the breakdown is optional: a note; out of memory or an interrupt still ends the run
        summary.provenance_note = f"{err}; removals by rule skipped"
        return
    summary.removed_by_rule, summary.removed_by_category = by_rule, by_category
    summary.provenance_rows = recorded
    summary.provenance_files = files
    if recorded != summary.removed:
        summary.provenance_note = (f"the builds recorded {recorded:,} removed rows; this diff finds "
                                   f"{summary.removed:,} (compared columns or keys differ from the builds')")
    if unrecorded:
        unchecked = (f"{REMOVED_FILE} of {', '.join(unrecorded)} has no recorded sha256 (built by an older relake): "
                     "removals by rule and the rows withheld are unchecked")
        summary.provenance_note = "; ".join(n for n in (summary.provenance_note, unchecked) if n)
