"""What a diff reports: the summary, its breakdown of removed rows, and the full diff written to ``--out``."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

import duckdb
from duckdb import ColumnExpression, ConstantExpression, Expression, FunctionExpression, StarExpression
from duckdb.sqltypes import VARCHAR

from relake.canonical import register_canonical
from relake.db import Db
from relake.diff.columns import Compared, json_pointer
from relake.errors import InputError
from relake.lake import check_user_path, replacing
from relake.record import Roles
from relake.report import HIDDEN, Report, json_meta, rounded
from relake.sources import Side
from relake.sql import query

OUT_FORMATS = {".parquet": "diff/write_parquet", ".csv": "diff/write_csv", ".jsonl": "diff/write_jsonl"}


DiffMode = Literal["keyed", "keyless"]


def _hosts(removed_by_domain: list[tuple[str | None, int]]) -> list[dict[str, Any]]:
    return [{"host": h, "rows": n} for h, n in removed_by_domain]


@dataclass
class DiffSummary(Report):
    """What ``relake diff`` reports; its ``--json`` is ``to_dict()``, derived from these fields."""

    json_computed: ClassVar[tuple[str, ...]] = ("identical",)

    a: dict[str, Any]
    b: dict[str, Any]
    mode: DiffMode
    key: list[str]
    key_note: str | None
    compared: list[str] = field(metadata=json_meta(name="compared_columns"))
    rows_a: int = field(default=0, metadata=json_meta(within="rows", name="a"))
    rows_b: int = field(default=0, metadata=json_meta(within="rows", name="b"))
    added: int = field(default=0, metadata=json_meta(within="rows"))
    removed: int = field(default=0, metadata=json_meta(within="rows"))
    changed: int = field(default=0, metadata=json_meta(within="rows"))
    unchanged: int = field(default=0, metadata=json_meta(within="rows"))
    column_changes: dict[str, int] = field(default_factory=dict)
    schema: dict[str, Any] = field(default_factory=dict)
    removed_by_rule: dict[str, int] | None = None
    removed_by_category: dict[str, int] | None = None
    provenance_note: str | None = None
    withheld_sensitive: int = 0  # rows of A and B withheld (withheld_a + withheld_b)
    withheld_a: int = 0  # rows of A whose URL (or key) a sensitive rule of this lake removed: compared by nobody
    withheld_b: int = 0  # the same of B (a diff run the other way round, or of copies)
    withheld_counted: int = field(default=0, metadata=HIDDEN)  # of those, folded into added or removed
    provenance_rows: int | None = field(default=None, metadata=HIDDEN)
    removed_by_domain: list[tuple[str | None, int]] = field(default_factory=list, metadata=json_meta(convert=_hosts))
    removed_by_shard: list[dict[str, Any]] = field(default_factory=list)
    buckets: dict[str, Any] | None = None
    hints: list[str] = field(default_factory=list)
    unchecked: list[str] = field(default_factory=list)  # sides read without their bytes checked (Side)
    out: str | None = None
    out_rows: int | None = None
    seconds: float = field(default=0.0, metadata=json_meta(convert=rounded))
    # up to --limit rows of each change: {"change", "key" (keyed), "copies" (keyless), "changed_columns", "before",
    # "after"}; never a withheld row (they never reach the comparison)
    examples: list[dict[str, Any]] = field(default_factory=list)
    provenance_files: list[Path] = field(default_factory=list, metadata=HIDDEN)  # removed.parquet of A..B's builds

    @property
    def rows_differ(self) -> bool:
        return bool(self.added or self.removed or self.changed)

    @property
    def identical(self) -> bool:
        return not self.rows_differ and not (self.schema.get("added") or self.schema.get("removed")
                                             or self.schema.get("retyped"))

    def count_withheld(self, rows_a: int, rows_b: int = 0) -> None:
        """Count the rows of A and of B withheld because a sensitive rule of this lake removed them; the comparison
        never saw them. Rows of each side. When only A holds such rows (B descends from A) they are removed rows;
        when only B does (A descends from B) added rows: counted, never listed. When both do, they are not
        compared at all, and a hint says so."""
        self.withheld_a, self.withheld_b = rows_a, rows_b
        self.withheld_sensitive = rows_a + rows_b
        self.rows_a += rows_a
        self.rows_b += rows_b
        if rows_a and not rows_b:
            self.removed += rows_a
            self.withheld_counted = rows_a
        elif rows_b and not rows_a:
            self.added += rows_b
            self.withheld_counted = rows_b
        elif rows_a and rows_b:
            self.hints.append(f"{rows_a:,} rows of A and {rows_b:,} of B were withheld (a sensitive rule of this "
                              "lake removed their URL); they are in the row counts but were not compared, so the "
                              "added, removed and changed counts leave them out")


def out_format(out: str) -> str:
    suffix = Path(out).suffix.lower()
    if suffix not in OUT_FORMATS:
        raise InputError(f"--out {out}: unknown format {suffix or '(no extension)'!r}; "
                         f"use one of {', '.join(OUT_FORMATS)}")
    check_user_path(out)
    return OUT_FORMATS[suffix]



def removal_breakdown(
    db: Db, summary: DiffSummary, a: Side, key_cols: list[str], values: list[Compared], top: int
) -> None:
    """Removed rows by the URL's host (the ``top`` most) and by A's shard."""
    url = a.roles.url
    pointer: str | None = None
    if url and url in key_cols:
        pointer = "/k" if len(key_cols) == 1 else "/k" + json_pointer(url)
    elif url and url in {x.name for x in values}:
        pointer = "/r" + json_pointer(url)
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



def example_rows(db: Db, summary: DiffSummary, limit: int) -> None:
    """Up to ``limit`` differing rows of each change (added, removed, changed), for the screen and ``--json``."""
    if limit <= 0 or not summary.rows_differ:
        return
    if summary.key:
        for k, change, changed, a_r, b_r in query("diff/examples_keyed").rows(db.con, limit=limit):
            key = {summary.key[0]: k} if len(summary.key) == 1 else dict(k)
            summary.examples.append({"change": str(change), "key": key, "changed_columns": list(changed or []),
                                     "before": a_r, "after": b_r})
    else:
        for change, n, a_r, b_r in query("diff/examples_keyless").rows(db.con, limit=limit):
            summary.examples.append({"change": str(change), "copies": int(n), "changed_columns": [],
                                     "before": a_r, "after": b_r})


def _with_provenance(db: Db, summary: DiffSummary, rel: duckdb.DuckDBPyRelation, roles: Roles,
                     csv: bool) -> tuple[duckdb.DuckDBPyRelation, list[Expression]]:
    """``rel`` with the rules and categories of each removed row (``removed_rules``, ``removed_categories``) from
    the removed.parquet files of the builds from A to B, matched by the id (``key_text``) when the diff's key is
    A's id column, or by URL and caption when it is those two. No columns when B does not descend from A or the
    key is another."""
    files = summary.provenance_files
    key = summary.key
    k = ColumnExpression("k")
    if not files or not key:
        return rel, []
    removed = db.con.read_parquet([db.plain_path(p) for p in files], union_by_name=True)
    if key == [roles.id] and "key" in removed.columns:
        mine: Expression = FunctionExpression("key_text", k)
        theirs: Expression = FunctionExpression("key_text", ColumnExpression("key"))
    elif roles.url and roles.caption and key == [roles.url, roles.caption] and {"url", "caption"} <= set(
            removed.columns):
        mine = FunctionExpression("struct_pack", FunctionExpression("struct_extract", k, ConstantExpression(
            roles.url)).cast(VARCHAR).alias("u"), FunctionExpression("struct_extract", k, ConstantExpression(
                roles.caption)).cast(VARCHAR).alias("c"))
        theirs = FunctionExpression("struct_pack", ColumnExpression("url").alias("u"),
                                    ColumnExpression("caption").alias("c"))
    else:
        summary.hints.append("--out has no rules or categories of removed rows: the diff's key is neither A's id "
                             "column nor its URL and caption, which removed.parquet records")
        return rel, []
    register_canonical(db.con)
    prov = removed.select(theirs.alias("relake_pk"), ColumnExpression("rules").alias("relake_rules"),
                          ColumnExpression("categories").alias("relake_categories"))
    keyed = rel.select(StarExpression(), mine.alias("relake_k"))
    joined = keyed.join(prov, (ColumnExpression("relake_k") == ColumnExpression("relake_pk"))
                        & (ColumnExpression("change") == ConstantExpression("removed")), how="left")
    cols: list[Expression] = []
    for name, col in (("removed_rules", "relake_rules"), ("removed_categories", "relake_categories")):
        value: Expression = ColumnExpression(col)
        if csv:
            value = FunctionExpression("array_to_string", value, ConstantExpression(","))
        cols.append(value.alias(name))
    return joined, cols


def write_out(db: Db, summary: DiffSummary, compared: list[Compared], out: str, fmt: str,
              roles: Roles | None = None) -> int:
    """COPY the differing rows, flattened and sorted by key, to a temp file beside ``out``, then rename. When B
    descends from A, each removed row carries the rules and categories that removed it (``_with_provenance``)."""
    values = [x.name for x in compared if x.name not in summary.key]
    rel = db.con.sql(query("diff/rows_keyed" if summary.key else "diff/rows_keyless").text)
    prov_cols: list[Expression] = []
    if roles is not None:
        rel, prov_cols = _with_provenance(db, summary, rel, roles, fmt == "diff/write_csv")
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
    cols += prov_cols
    names = [c.get_name() for c in cols]
    lowered = [n.lower() for n in names]
    clash = sorted({n for n in names if lowered.count(n.lower()) > 1})
    if clash:
        raise InputError(f"cannot write --out: output column {clash[0]!r} would appear twice "
                         "(a key column named like an output column); rename it with --map")
    rel.select(*cols).create_view("diff_out", replace=True)
    with replacing(out) as tmp:
        query(fmt).run(db.con, path=str(tmp))
    return summary.added + summary.removed + summary.changed - summary.withheld_counted  # withheld: never written
