"""Foundation commands: synth, ingest, versions, show, verify, gc, demo."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from relake import console
from relake.cli.app import HOUSEKEEPING, LOOK, MAINTAIN, START, app, handled, lake
from relake.cli.options import JsonOpt, MemOpt
from relake.errors import ExitCode, IntegrityError
from relake.lake import Leftovers, check_user_path
from relake.report import plural

# Each command imports the library it calls in its body, so that ``relake`` starts without loading every command's
# modules (STYLE 14 allows it in the CLI layer only; tests/test_architecture.py).


@app.command(rich_help_panel=START)
@handled
def synth(
    out: Annotated[str, typer.Argument(help="Folder to write the shards into (must not hold shards yet).")],
    rows: Annotated[int, typer.Option("--rows", metavar="N", min=0, help="Number of rows.")] = 100_000,
    shards: Annotated[int, typer.Option("--shards", metavar="N", min=1, help="Number of parquet shards.")] = 4,
    seed: Annotated[int, typer.Option("--seed", metavar="N",
                                      help="Random seed; the same seed gives identical bytes.")] = 0,
    as_json: JsonOpt = False,
) -> None:
    """Write LAION-5B-like metadata shards (part-NNNNN-<uuid>-c000.snappy.parquet)."""
    from relake.synth import synth_report

    with console.progress("synth", rows) as advance:
        done = [0]

        def tick(n: int) -> None:
            advance(n - done[0])
            done[0] = n

        r = synth_report(check_user_path(out), rows, shards, seed, progress=tick)
    if as_json:
        console.print_json(r.to_dict())
        return
    for p in r.paths:
        console.out.print(console.literal(str(p)))
    console.info(f"wrote {plural(r.rows, 'row')} in {plural(r.shards, 'shard')} in {r.seconds:.2f} s "
                 f"({r.rows / max(r.seconds, 1e-9):,.0f} rows/s)")


@app.command(rich_help_panel=MAINTAIN)
@handled
def ingest(
    name: Annotated[str, typer.Argument(help="Name of the new version.")],
    sources: Annotated[list[str], typer.Argument(
        help="Parquet files, folders or glob patterns; or fsspec URIs (s3://, gs://, hf://, memory://, file://) "
             "of files, folders or globs, which need --copy.")],
    url_col: Annotated[str | None, typer.Option("--url-col", metavar="COL", help="Column holding the URL.")] = None,
    caption_col: Annotated[str | None, typer.Option("--caption-col", metavar="COL",
                                                    help="Column holding the caption.")] = None,
    id_col: Annotated[str | None, typer.Option("--id-col", metavar="COL", help="Column holding the row id.")] = None,
    copy: Annotated[bool, typer.Option(
        "--copy", help="Copy shards into the lake (required for URIs: remote files are downloaded into it).")] = False,
    memory_limit: MemOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Register parquet files (local, or fsspec URIs copied in with --copy) as an immutable original version."""
    from relake.ingest import ingest_report, planned_files

    with console.progress("ingest", planned_files(sources)) as advance:
        r = ingest_report(lake(), name, sources, url_col=url_col, caption_col=caption_col, id_col=id_col,
                          copy=copy, memory_limit=memory_limit, progress=advance)
    if as_json:
        console.print_json(r.to_dict())
        return
    secs = r.seconds
    console.out.print(f"ingested {r.name}: {plural(r.rows, 'row')}, {plural(r.shards, 'shard')}, "
                      f"{r.bytes / 1e6:,.1f} MB")
    console.info(f"{secs:.2f} s ({r.rows / max(secs, 1e-9):,.0f} rows/s, {r.bytes / 1e6 / max(secs, 1e-9):,.0f} MB/s)")


@app.command(rich_help_panel=LOOK)
@handled
def versions(as_json: JsonOpt = False) -> None:
    """List the lake's versions as a lineage."""
    listing = lake().list_versions()
    for n, why in listing.skipped:  # one damaged version must not hide the others
        console.warn(f"skipped {n}: {why}")
    if as_json:
        console.print_json(listing.to_dict())
        return
    vs = listing.versions
    if not vs:
        console.info(f"no versions in {listing.root} yet; try `relake demo` or `relake ingest NAME FILES`")
        return
    children: dict[str | None, list[str]] = {}
    by_name = {v.name: v for v in vs}
    for v in vs:
        parent = v.parent if v.parent in by_name else None
        children.setdefault(parent, []).append(v.name)
    lines: list[tuple[str, str, str, str, str]] = []

    def walk(name: str, prefix: str, branch: str) -> None:
        v = by_name[name]
        lines.append((prefix + branch + name, v.kind, v.storage, f"{v.rows:,}", str(v.shards)))
        kids = sorted(children.get(name, []))
        below = prefix + {"": "", "├─ ": "│  ", "└─ ": "   "}[branch]
        for i, c in enumerate(kids):
            walk(c, below, "└─ " if i == len(kids) - 1 else "├─ ")

    for root in sorted(children.get(None, [])):
        walk(root, "", "")
    console.table(f"versions in {listing.root}", ["version", "kind", "storage", "rows", "shards"], lines)


@app.command(rich_help_panel=LOOK)
@handled
def show(name: Annotated[str, typer.Argument(help="Version name.")], as_json: JsonOpt = False) -> None:
    """Show one version's manifest and stats."""
    v = lake().load_version(name)
    if as_json:
        console.print_json(v.to_dict())
        return
    console.kv(f"version {v.name}", [
        ("kind", v.kind), ("parent", v.parent or "-"), ("rows", f"{v.rows:,}"), ("shards", len(v.shards)),
        ("bytes", f"{v.bytes:,}"), ("storage", v.storage),
        ("roles", v.roles.text),
        ("fingerprint", f"{v.fingerprint.value} ({plural(v.fingerprint.rows, 'row')})"),
        ("tool", ", ".join(f"{k} {val}" for k, val in v.tool.items())),
        *[(k.replace("_", " "), f"{val:,}" if isinstance(val, int) else val) for k, val in v.stats.items()
          if not isinstance(val, dict) and val is not None],
    ])
    for key, title, first in (
        ("removed_by_rule", "removed by rule (a row counts for each rule that matched it)", "rule"),
        ("removed_by_category", "removed by category (a row counts once per category of its rules)", "category"),
        ("removed_by_public_category", "removed by public category (each row once, under the first of its "
                                       "categories, as the removal manifest lists it)", "category"),
    ):
        counts = v.stats.get(key)
        if isinstance(counts, dict) and counts:
            console.table(title, [first, "rows"], [(k, f"{n:,}") for k, n in sorted(counts.items())])
    console.table("schema", ["column", "type"], [(c.name, c.type) for c in v.schema])
    shown = v.shards[:10]
    console.table("shards" + (f" (first 10 of {len(v.shards)})" if len(v.shards) > 10 else ""),
                  ["path", "rows", "bytes", "sha256"],
                  [(s.path, f"{s.rows:,}", f"{s.bytes:,}", s.sha256[:16] + "…") for s in shown])


@app.command(rich_help_panel=LOOK)
@handled
def verify(
    target: Annotated[str | None, typer.Argument(help="Version name or folder (default: every version).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Re-hash shards, re-count rows, recompute fingerprints; exit 1 naming what differs."""
    from relake.verify import planned_shards, verify_target

    with console.progress("verify", planned_shards(lake(), target)) as advance:
        verification = verify_target(lake(), target, progress=advance)
    if as_json:
        console.print_json(verification.to_dict())
    else:
        for r in verification.reports:
            for n in r.notes:
                console.warn(f"{r.target}: {n}")
            if r.ok:
                console.out.print(f"ok  {r.target}: {plural(r.shards, 'shard')}, {plural(r.rows, 'row')}")
            else:
                console.out.print(f"BAD {r.target}:")
                for p in r.problems:
                    console.out.print(console.literal("    " + p))
    bad = verification.bad
    if bad:
        if not as_json:
            raise IntegrityError(
                f"{sum(len(r.problems) for r in bad)} problem(s) in {', '.join(r.target for r in bad)}")
        raise typer.Exit(ExitCode.FOUND)


@app.command(rich_help_panel=HOUSEKEEPING)
@handled
def gc(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only list what would be removed.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Remove leftovers of crashed runs (staging and spill folders no living process holds) and URL caches no build
    will read (of another canonical rule, of shards no version has, damaged)."""
    from relake.urlcache import collect_garbage

    the_lake = lake()
    r = Leftovers(the_lake.root, collect_garbage(the_lake, dry_run=dry_run), dry_run)
    if as_json:
        console.print_json(r.to_dict())
        return
    removed = r.removed
    for p in removed:
        console.out.print(console.literal(("would remove " if dry_run else "removed ") + str(p)))
    if not removed:
        console.info("nothing to remove")


@app.command(rich_help_panel=START)
@handled
def demo(
    rows: Annotated[int, typer.Option("--rows", metavar="N", min=1000,
                                      help="Rows in the synthetic original.")] = 1_000_000,
    out: Annotated[Path | None, typer.Option("--work", metavar="DIR", help="Folder for the synthetic inputs.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """From nothing: synthesise a LAION-like original, ingest, show, verify, and say what to try next."""
    from relake.demo import run_demo

    r = run_demo(lake(), rows=rows, work=out)
    if as_json:
        console.print_json(r.to_dict())
        return
    console.out.print(f"\ndemo finished in {r.seconds:.1f} s, lake at {r.lake}")
    console.out.print("try next:")
    for line in r.try_next:
        console.out.print(console.literal("  " + line))


@app.command(rich_help_panel=MAINTAIN)
@handled
def rm(
    name: Annotated[str, typer.Argument(metavar="VERSION", help="The version to remove.")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only say what would be removed.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Remove a version nothing derives from and not published (its folder, in one rename; crash-safe)."""
    from relake.remove import remove_version

    r = remove_version(lake(), name, dry_run=dry_run)
    if as_json:
        console.print_json(r.to_dict())
        return
    console.out.print(console.literal(f"{'would remove' if r.dry_run else 'removed'} {r.name}: "
                                      f"{plural(r.files, 'file')}, {r.bytes:,} bytes ({r.folder})"))
