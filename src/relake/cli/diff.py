"""Commands comparing data: diff, fingerprint."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from relake import console
from relake.cli.app import LOOK, app, handled, lake
from relake.cli.options import MAX_COUNT, EngineOpt, JsonOpt, MemOpt, RayAddressOpt
from relake.engine import Engine, EngineKind, get_engine
from relake.errors import ExitCode, InputError
from relake.report import plural

if TYPE_CHECKING:
    from relake.diff import DiffSummary

# Each command imports the library it calls in its body, so that ``relake`` starts without loading every command's
# modules (STYLE 14 allows it in the CLI layer only; tests/test_architecture.py).


@app.command(rich_help_panel=LOOK)
@handled
def diff(
    a: Annotated[str, typer.Argument(
        metavar="A", help="Version name, or parquet file/folder (anything with '/' or .parquet).")],
    b: Annotated[str, typer.Argument(metavar="B", help="Version name, or parquet file/folder, to compare with A.")],
    key: Annotated[
        str | None,
        typer.Option("--key", metavar="COL[,COL]",
                     help="Key column(s), comma-separated, e.g. url,caption (default: the id column if unique "
                          "on both sides, else URL+caption, else keyless)."),
    ] = None,
    keyless: Annotated[
        bool, typer.Option("--keyless", help="Compare rows as a multiset (duplicates count); no 'changed' rows.")
    ] = False,
    maps: Annotated[
        list[str] | None,
        typer.Option("--map", metavar="A_COL=B_COL", help="A's column A_COL is B's B_COL (repeatable), "
                                                         "e.g. --map URL=url --map TEXT=caption."),
    ] = None,
    out: Annotated[
        str | None, typer.Option("--out", metavar="FILE", help="Write every differing row, sorted by key, to FILE "
                                               "(.parquet, .csv or .jsonl).")
    ] = None,
    exit_code: Annotated[
        bool, typer.Option("--exit-code", hidden=True,
                           help="Kept for old scripts: diff always exits 1 when A and B differ, like diff(1).")
    ] = False,
    top: Annotated[int, typer.Option("--top", min=1, metavar="N", help="How many domains and shards to list.")] = 10,
    limit: Annotated[int, typer.Option("--limit", min=0, max=MAX_COUNT, metavar="N",
                                       help="Example rows shown of each change (added, removed, changed); never a "
                                       "withheld row.")] = 5,
    stat: Annotated[bool, typer.Option("--stat", help="Counts only: no example rows.")] = False,
    verify: Annotated[
        bool, typer.Option("--verify", help="Re-hash each version's shards against its record before reading "
                                            "them (a flipped byte reads as other values).")
    ] = False,
    no_buckets: Annotated[
        bool, typer.Option("--no-buckets", help="Do not trust manifest fingerprints to skip equal buckets.")
    ] = False,
    memory_limit: MemOpt = None,
    engine: EngineOpt = EngineKind.local,
    ray_address: RayAddressOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Row-level diff of two versions or parquet sets: summary on screen, full diff with --out.

    Exits 0 when A and B are identical, 1 when they differ (rows or schema), 2 on an error, like diff(1).

    Rows are matched by key and reported as added, removed or changed (with the columns that changed);
    columns present on one side only are reported as schema changes.

    With --engine ray, a keyed diff compares keys and row hashes in Ray tasks (one per input file, then one
    per key bucket); the key check, the changed rows, the summary and --out stay here and come out the same.
    A keyless diff runs on the local engine only.
    """
    from relake.diff import KEYLESS_LOCAL_ONLY, diff_versions

    if key is not None and keyless:
        raise typer.BadParameter("--key and --keyless exclude each other", param_hint="--key")
    if keyless and engine == EngineKind.ray:
        raise InputError(f"{KEYLESS_LOCAL_ONLY}; drop --keyless (diff by key) or use --engine local")
    runner: Engine | None = get_engine(engine, ray_address)  # validates --ray-address; joins Ray early
    if engine == EngineKind.local:
        runner = None  # the in-process diff, unchanged
    keys = None if key is None else [k.strip() for k in key.split(",")]
    with console.progress("diff", None):
        s = diff_versions(lake(), a, b, key=keys, keyless=keyless, maps=maps or [], out=out,
                          memory_limit=memory_limit, use_buckets=not no_buckets, top=top, engine=runner,
                          verify=verify, limit=0 if stat else limit)
    if as_json:
        console.print_json(s.to_dict())
    else:
        _render(s, top)
    del exit_code  # diff always exits 1 on a difference now
    if not s.identical:
        raise typer.Exit(ExitCode.FOUND)


def _render(s: DiffSummary, top: int) -> None:
    key = "+".join(s.key) if s.key else "none (keyless: rows as a multiset)"
    items: list[tuple[str, object]] = [
        ("A", f"{s.a['spec']} ({s.a['kind']}, {plural(s.a['files'], 'file')})"),
        ("B", f"{s.b['spec']} ({s.b['kind']}, {plural(s.b['files'], 'file')})"),
        ("key", key),
        ("rows in A", f"{s.rows_a:,}"), ("rows in B", f"{s.rows_b:,}"),
        ("added", f"{s.added:,}"), ("removed", f"{s.removed:,}"),
        ("changed", f"{s.changed:,}"), ("unchanged", f"{s.unchanged:,}"),
    ]
    if s.withheld_sensitive:
        sides = " and ".join(f"{n:,} of {side}" for n, side in ((s.withheld_a, "A"), (s.withheld_b, "B")) if n)
        items.append(("withheld", f"{sides}: rows a sensitive rule removed; counted, never listed"))
    if s.buckets is not None:
        items.append(("buckets", f"{s.buckets['equal']} of 256 equal in both manifests"
                                 + ("; no row read" if s.buckets["scan_skipped"] else "")))
    if s.out is not None:
        items.append(("written", f"{s.out_rows:,} differing rows to {s.out}"
                              + (f" ({s.withheld_counted:,} withheld rows not written)" if s.withheld_counted else "")))
    items.append(("time", f"{s.seconds:.2f} s"))
    console.kv(f"diff {s.a['spec']} → {s.b['spec']}", items)
    if s.key_note:
        console.warn(s.key_note)
    if s.column_changes:
        console.table("changed columns", ["column", "rows"], [(c, f"{n:,}") for c, n in s.column_changes.items()])
    schema_rows = [("added", c["name"], c["type"]) for c in s.schema["added"]]
    schema_rows += [("removed", c["name"], c["type"]) for c in s.schema["removed"]]
    schema_rows += [("retyped", c["name"], f"{c['a']} → {c['b']}") for c in s.schema["retyped"]]
    if schema_rows:
        console.table("schema changes", ["change", "column", "type"], schema_rows)
    if s.removed_by_rule:
        console.table("removed by rule", ["rule", "rows"], [(r, f"{n:,}") for r, n in s.removed_by_rule.items()])
    if s.removed_by_category:
        console.table("removed by category", ["category", "rows"],
                      [(r, f"{n:,}") for r, n in s.removed_by_category.items()])
    if s.provenance_note:
        console.info(s.provenance_note)
    for note in s.unchecked:
        console.warn(note)
    left_out = f"; {s.withheld_counted:,} withheld rows not shown" if s.withheld_counted else ""
    if s.removed_by_domain:
        console.table(f"removed by domain (top {top}{left_out})", ["host", "rows"],
                      [(h or "(no host)", f"{n:,}") for h, n in s.removed_by_domain])
    if s.removed_by_shard:
        shown = s.removed_by_shard[:top]
        title = "removed by shard" + (f" (top {top} of {len(s.removed_by_shard)}{left_out})"
                                      if len(s.removed_by_shard) > top else (f" ({left_out[2:]})" if left_out else ""))
        console.table(title, ["shard", "file", "rows"],
                      [("?" if e["shard"] is None else e["shard"], e["file"] or "?", f"{e['rows']:,}") for e in shown])
    for hint in s.hints:
        console.info("hint: " + hint)
    _render_examples(s)


def _render_examples(s: DiffSummary) -> None:
    """The example rows: one table per change, key columns then values (a changed value as ``before → after``)."""
    for change in ("removed", "added", "changed"):
        rows = [e for e in s.examples if e["change"] == change]
        if not rows:
            continue
        first = rows[0]
        keys = list(first.get("key", {}))
        values = list((first["before"] if change == "removed" else first["after"]) or {})
        table = []
        for e in rows:
            row = [e["key"][k] for k in keys] if keys else [e["copies"]]
            for v in values:
                before, after = (e["before"] or {}).get(v), (e["after"] or {}).get(v)
                shown = before if change == "removed" else after
                row.append(f"{before} → {after}" if v in e["changed_columns"] else shown)
            table.append(["NULL" if x is None else x for x in row])
        of = {"removed": s.removed - s.withheld_counted if s.withheld_b == 0 else s.removed,
              "added": s.added - s.withheld_counted if s.withheld_a == 0 else s.added,
              "changed": s.changed}[change]
        console.rows(f"{change}: {plural(len(rows), 'example row')} of {of:,} (--limit N; --stat for none)",
                     [*(keys or ["copies"]), *values], table, label=change)


@app.command(rich_help_panel=LOOK)
@handled
def fingerprint(
    target: Annotated[str, typer.Argument(metavar="TARGET", help="Version name, or parquet file/folder.")],
    from_manifest: Annotated[
        bool, typer.Option("--from-manifest", help="Read the version's recorded fingerprint instead of rescanning.")
    ] = False,
    buckets: Annotated[bool, typer.Option("--buckets", help="Also print the 256 per-bucket values.")] = False,
    memory_limit: MemOpt = None,
    engine: EngineOpt = EngineKind.local,
    ray_address: RayAddressOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Order- and shard-invariant content fingerprint of a version or of any parquet set.

    With --engine ray, each file is scanned by its own Ray task and the per-bucket sums are added up
    (same result; every file must have the same columns and types)."""
    from relake.fingerprint import fingerprint_report

    runner = None if from_manifest else get_engine(engine, ray_address)
    with console.progress("fingerprint", None):
        r = fingerprint_report(lake(), target, from_manifest=from_manifest, memory_limit=memory_limit,
                               engine=runner, buckets=buckets)
    if as_json:
        console.print_json(r.to_dict())
        return
    console.out.print(console.literal(f"{r.fingerprint.value}  {plural(r.fingerprint.rows, 'row')}  {target}"))
    if r.manifest_matches is not None:
        console.info("matches the manifest" if r.manifest_matches else
                     "DIFFERS from the manifest (run `relake verify` to see which shards changed)")
    console.info(f"{r.source} in {r.seconds:.2f} s; {r.fingerprint.algorithm}")
    if r.buckets is not None:
        console.table("buckets", ["bucket", "rows", "sum"], [(k, f"{n:,}", v) for k, (n, v) in r.buckets.items()])
